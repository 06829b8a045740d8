//! A minimal SMTP client (RFC 5321) for alerts: EHLO, optional STARTTLS (RFC 3207)
//! or implicit TLS, optional AUTH PLAIN, one message to every recipient.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use crate::config::notify::split_server;
use crate::config::notify::{SmtpConfig, SmtpTls};

pub struct Mail<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub helo: &'a str,
}

/// Longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 bytes).
const MAX_LINE: u64 = 2048;
/// Most lines in one reply (an EHLO answer has one per extension).
const MAX_LINES: usize = 100;

/// Sends `mail` within `cfg.timeout` (the whole exchange, connection included).
pub async fn send(cfg: &SmtpConfig, mail: &Mail<'_>) -> Result<(), String> {
    tokio::time::timeout(cfg.timeout, send_unbounded(cfg, mail))
        .await
        .map_err(|_| format!("no answer within {}", humantime::format_duration(cfg.timeout)))?
}

async fn send_unbounded(cfg: &SmtpConfig, mail: &Mail<'_>) -> Result<(), String> {
    let (host, port) = split_server(&cfg.server)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    match cfg.tls {
        SmtpTls::Tls => {
            let tls = tls_connect(cfg, &host, tcp).await?;
            let mut s = Session::new(tls);
            s.expect(220).await?;
            s.ehlo(mail.helo).await?;
            s.deliver(cfg, mail).await
        }
        SmtpTls::None | SmtpTls::Starttls => {
            let mut s = Session::new(tcp);
            s.expect(220).await?;
            let ext = s.ehlo(mail.helo).await?;
            if cfg.tls == SmtpTls::None {
                return s.deliver(cfg, mail).await;
            }
            if !ext.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                return Err(format!("{host} does not offer STARTTLS (tls = \"starttls\")"));
            }
            s.cmd("STARTTLS", 220).await?;
            let tls = tls_connect(cfg, &host, s.io.into_inner()).await?;
            let mut s = Session::new(tls);
            s.ehlo(mail.helo).await?;
            s.deliver(cfg, mail).await
        }
    }
}

async fn tls_connect(
    cfg: &SmtpConfig,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let base = crate::checks::tls::client_config(crate::checks::tls::TlsOptions {
        ca_file: cfg.ca_file.as_deref(),
        ..Default::default()
    })
    .map_err(|e| format!("TLS: {e:?}"))?;
    // No ALPN: the checks' configuration offers http/1.1.
    let mut c = (*base).clone();
    c.alpn_protocols.clear();
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(c))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host}: {e}"))
}

struct Session<T> {
    io: BufReader<T>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Session<T> {
    fn new(io: T) -> Self {
        Session {
            io: BufReader::new(io),
        }
    }

    /// Reads one (possibly multi-line) reply; returns its lines' texts. The server
    /// decides what it sends: lines and their number are capped.
    async fn expect(&mut self, code: u16) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            if lines.len() == MAX_LINES {
                return Err(format!("reply longer than {MAX_LINES} lines"));
            }
            let mut line = String::new();
            let n = (&mut self.io)
                .take(MAX_LINE)
                .read_line(&mut line)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by the server".into());
            }
            if !line.ends_with('\n') {
                return Err(if n as u64 == MAX_LINE {
                    format!("reply line longer than {MAX_LINE} bytes")
                } else {
                    "connection closed by the server".into()
                });
            }
            let line = line.trim_end();
            let got: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or(format!("bad reply {line:?}"))?;
            if got != code {
                return Err(format!("expected {code}, got {line:?}"));
            }
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(lines);
            }
        }
    }

    async fn cmd(&mut self, line: &str, code: u16) -> Result<Vec<String>, String> {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.expect(code)
            .await
            .map_err(|e| format!("{}: {e}", line.split(' ').next().unwrap_or(line)))
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, String> {
        self.cmd(&format!("EHLO {helo}"), 250).await
    }

    async fn deliver(&mut self, cfg: &SmtpConfig, mail: &Mail<'_>) -> Result<(), String> {
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            use base64_lite::encode;
            let token = encode(format!("\0{u}\0{}", p.expose()).as_bytes());
            self.cmd(&format!("AUTH PLAIN {token}"), 235).await?;
        }
        self.cmd(&format!("MAIL FROM:<{}>", cfg.from), 250).await?;
        for to in &cfg.to {
            self.cmd(&format!("RCPT TO:<{to}>"), 250).await?;
        }
        self.cmd("DATA", 354).await?;
        let msg = message(cfg, mail);
        self.io
            .get_mut()
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.cmd(".", 250).await?;
        let _ = self.cmd("QUIT", 221).await;
        Ok(())
    }
}

/// The message with headers, CRLF line ends and dot-stuffing (RFC 5321 §4.5.2).
fn message(cfg: &SmtpConfig, mail: &Mail<'_>) -> String {
    let date = httpdate(std::time::SystemTime::now());
    let mut out = format!(
        "From: <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        cfg.from,
        cfg.to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
        mail.subject.replace(['\r', '\n'], " "),
    );
    for line in mail.body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// RFC 5322 date in UTC.
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Standard base64 (AUTH PLAIN only: too small a need for a crate).
mod base64_lite {
    pub fn encode(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::{serve, Serve};

    fn plain(server: String, timeout_ms: u64) -> SmtpConfig {
        SmtpConfig {
            server,
            from: "a@example.org".into(),
            to: vec!["b@example.org".into()],
            tls: SmtpTls::None,
            ca_file: None,
            timeout: std::time::Duration::from_millis(timeout_ms),
            username: None,
            password: None,
        }
    }

    const MAIL: Mail<'static> = Mail {
        subject: "s",
        body: "b",
        helo: "h",
    };

    /// A server's endless reply (one endless line, or endless continuation lines)
    /// ends in an error naming the bound, long before the (large) timeout.
    #[tokio::test]
    async fn endless_replies_are_cut() {
        for (what, serve_how) in [
            ("line longer than 2048 bytes", Serve::Endless(b"220 ", b"x")),
            ("longer than 100 lines", Serve::Endless(b"", b"220-more\r\n")),
        ] {
            let addr = serve(serve_how);
            let r = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                send(&plain(addr, 60_000), &MAIL),
            )
            .await
            .expect("the reply is bounded: send returns");
            let e = r.unwrap_err();
            assert!(e.contains(what), "{e}");
        }
    }

    /// A server that accepts and never answers: `smtp.timeout` ends the exchange.
    #[tokio::test]
    async fn silent_server_times_out() {
        let addr = serve(Serve::Silent);
        let r = tokio::time::timeout(std::time::Duration::from_secs(20), send(&plain(addr, 300), &MAIL))
            .await
            .expect("smtp.timeout applies");
        assert!(r.unwrap_err().contains("no answer within 300ms"));
    }

    #[test]
    fn servers() {
        assert_eq!(
            split_server("mail.example.org:587").unwrap(),
            ("mail.example.org".into(), 587)
        );
        assert_eq!(split_server("192.0.2.5").unwrap(), ("192.0.2.5".into(), 25));
        assert_eq!(
            split_server("[2001:db8::5]:465").unwrap(),
            ("2001:db8::5".into(), 465)
        );
        assert!(split_server("2001:db8::5").is_err());
        assert!(split_server("x:notaport").is_err());
    }

    #[test]
    fn base64_and_date() {
        assert_eq!(base64_lite::encode(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
        assert_eq!(base64_lite::encode(b"ab"), "YWI=");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(httpdate(t), "Tue, 14 Nov 2023 22:13:20 +0000");
    }

    #[test]
    fn dot_stuffing_and_crlf() {
        let cfg = SmtpConfig {
            server: "x".into(),
            from: "a@example.org".into(),
            to: vec!["b@example.org".into()],
            tls: SmtpTls::None,
            ca_file: None,
            timeout: std::time::Duration::from_secs(1),
            username: None,
            password: None,
        };
        let m = message(
            &cfg,
            &Mail {
                subject: "s\r\nBcc: x",
                body: "one\n.two",
                helo: "h",
            },
        );
        assert!(m.contains("Subject: s  Bcc: x\r\n"), "{m}");
        assert!(m.ends_with("\r\none\r\n..two\r\n"), "{m}");
    }
}
