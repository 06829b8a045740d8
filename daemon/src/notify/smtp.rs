//! A minimal SMTP client (RFC 5321) for alerts: EHLO, optional STARTTLS (RFC 3207)
//! or implicit TLS, optional AUTH PLAIN or LOGIN, one 7-bit clean message (RFC 2047
//! subject, quoted-printable body when needed) to every recipient. Kept by hand rather
//! than `lettre`: see docs/architecture.md, "Field libraries: decision and figures".

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
            let ext = s.ehlo(mail.helo).await?;
            s.deliver(cfg, &ext, mail).await
        }
        SmtpTls::None | SmtpTls::Starttls => {
            let mut s = Session::new(tcp);
            s.expect(220).await?;
            let ext = s.ehlo(mail.helo).await?;
            if cfg.tls == SmtpTls::None {
                return s.deliver(cfg, &ext, mail).await;
            }
            if !ext.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                return Err(format!("{host} does not offer STARTTLS (tls = \"starttls\")"));
            }
            s.cmd("STARTTLS", 220).await?;
            let tls = tls_connect(cfg, &host, s.io.into_inner()).await?;
            let mut s = Session::new(tls);
            let ext = s.ehlo(mail.helo).await?;
            s.deliver(cfg, &ext, mail).await
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
        self.expect_any(&[code]).await
    }

    /// [`Self::expect`] with any of `codes` (the same one on every line of the reply).
    async fn expect_any(&mut self, codes: &[u16]) -> Result<Vec<String>, String> {
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
            if !codes.contains(&got) {
                let want = codes.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ");
                return Err(format!("expected {want}, got {line:?}"));
            }
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(lines);
            }
        }
    }

    async fn cmd(&mut self, line: &str, code: u16) -> Result<Vec<String>, String> {
        self.cmd_any(line, &[code]).await
    }

    async fn cmd_any(&mut self, line: &str, codes: &[u16]) -> Result<Vec<String>, String> {
        self.cmd_named(line, line.split(' ').next().unwrap_or(line), codes)
            .await
    }

    /// Sends `line`; errors are prefixed with `name` (never the line itself when it
    /// carries a credential).
    async fn cmd_named(&mut self, line: &str, name: &str, codes: &[u16]) -> Result<Vec<String>, String> {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.expect_any(codes).await.map_err(|e| format!("{name}: {e}"))
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, String> {
        self.cmd(&format!("EHLO {helo}"), 250).await
    }

    /// AUTH with the first mechanism of PLAIN and LOGIN (RFC 4954, RFC 4616,
    /// draft-murchison-sasl-login) that the server's EHLO answer `ext` offers.
    async fn auth(&mut self, ext: &[String], user: &str, password: &str) -> Result<(), String> {
        use base64_lite::encode;
        let offered = auth_mechanisms(ext);
        if offered.iter().any(|m| m == "PLAIN") {
            let token = encode(format!("\0{user}\0{password}").as_bytes());
            self.cmd(&format!("AUTH PLAIN {token}"), 235).await?;
        } else if offered.iter().any(|m| m == "LOGIN") {
            self.cmd("AUTH LOGIN", 334).await?;
            self.cmd_named(&encode(user.as_bytes()), "AUTH LOGIN user", &[334])
                .await?;
            self.cmd_named(&encode(password.as_bytes()), "AUTH LOGIN password", &[235])
                .await?;
        } else if offered.is_empty() {
            return Err("the server does not offer AUTH (smtp.username is set)".into());
        } else {
            return Err(format!(
                "the server offers AUTH {}; hafront speaks PLAIN and LOGIN",
                offered.join(" ")
            ));
        }
        Ok(())
    }

    async fn deliver(&mut self, cfg: &SmtpConfig, ext: &[String], mail: &Mail<'_>) -> Result<(), String> {
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            self.auth(ext, u, p.expose()).await?;
        }
        self.cmd(&format!("MAIL FROM:<{}>", cfg.from), 250).await?;
        for to in &cfg.to {
            // 251: "user not local; will forward" is a success too (RFC 5321 §4.2.2).
            self.cmd_any(&format!("RCPT TO:<{to}>"), &[250, 251]).await?;
        }
        self.cmd("DATA", 354).await?;
        let msg = message(cfg, mail, std::time::SystemTime::now());
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

/// The SASL mechanisms of an EHLO answer's `AUTH` line (also the old `AUTH=` form).
fn auth_mechanisms(ext: &[String]) -> Vec<String> {
    ext.iter()
        .filter_map(|l| {
            let up = l.to_ascii_uppercase();
            up.strip_prefix("AUTH ")
                .or_else(|| up.strip_prefix("AUTH="))
                .map(|m| m.split_ascii_whitespace().map(str::to_string).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// Longest header or body line written, CRLF excluded (RFC 5322 §2.1.1 allows 998;
/// quoted-printable lines are held to 76 by RFC 2045).
const MAX_TEXT_LINE: usize = 998;

/// The message with headers, CRLF line ends and dot-stuffing (RFC 5321 §4.5.2). It is
/// 7-bit clean whatever the text, so any server takes it (no 8BITMIME needed): a
/// subject that is not short printable ASCII becomes RFC 2047 encoded-words, a body
/// with non-ASCII bytes, control characters or overlong lines goes quoted-printable.
fn message(cfg: &SmtpConfig, mail: &Mail<'_>, now: std::time::SystemTime) -> String {
    let date = httpdate(now);
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let domain = cfg
        .from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("hafront.invalid");
    let (cte, body) = if body_is_7bit(mail.body) {
        ("7bit", mail.body.lines().map(str::to_string).collect::<Vec<_>>())
    } else {
        ("quoted-printable", quoted_printable(mail.body))
    };
    let mut out = format!(
        "From: <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{nanos}.{:08x}@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n",
        cfg.from,
        cfg.to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
        subject_header(mail.subject),
        fastrand::u32(..),
    );
    for line in body {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

/// Whether `body` can go as it is: printable ASCII and tabs, lines within the limit.
fn body_is_7bit(body: &str) -> bool {
    body.lines()
        .all(|l| l.len() <= MAX_TEXT_LINE && l.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
}

/// The Subject header's value: as it is when short printable ASCII (line breaks
/// become spaces), else RFC 2047 "B" encoded-words of at most 75 characters, one per
/// folded line; a decoder joins them back (§6.2: the folding between them is dropped).
fn subject_header(subject: &str) -> String {
    let flat = subject.replace(['\r', '\n'], " ");
    if flat.len() <= 900 && flat.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return flat;
    }
    // 45 bytes make 60 base64 characters: "=?utf-8?b?" + 60 + "?=" = 72.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in flat.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64_lite::encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Quoted-printable (RFC 2045 §6.7) lines of `body`'s UTF-8, each at most 76
/// characters (soft breaks end in `=`); trailing blanks are encoded.
fn quoted_printable(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in body.lines() {
        let bytes = line.as_bytes();
        let mut cur = String::new();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal = (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !last;
            let token = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            // Keep room for the soft break's '=' unless this is the line's end.
            let room = if last { 76 } else { 75 };
            if cur.len() + token.len() > room {
                cur.push('=');
                out.push(std::mem::take(&mut cur));
            }
            cur.push_str(&token);
        }
        out.push(cur);
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

/// Standard base64 (AUTH and RFC 2047 words only: too small a need for a crate).
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
            std::time::SystemTime::now(),
        );
        assert!(m.contains("Subject: s  Bcc: x\r\n"), "{m}");
        assert!(m.contains("Content-Transfer-Encoding: 7bit\r\n"), "{m}");
        assert!(m.ends_with("\r\none\r\n..two\r\n"), "{m}");
    }

    #[test]
    fn encodings() {
        // RFC 2047 words: 45 bytes each at most, never splitting a character.
        let s = subject_header(&"é".repeat(30));
        let words: Vec<&str> = s.split("\r\n ").collect();
        assert_eq!(words.len(), 2, "{s}");
        assert!(
            words.iter().all(|w| w.len() <= 75 && w.starts_with("=?utf-8?b?")),
            "{s}"
        );
        assert_eq!(subject_header("plain"), "plain");
        // Quoted-printable: soft breaks at 76, '=' and trailing blanks encoded.
        let q = quoted_printable(&format!("{}\na=b \n.x é", "y".repeat(200)));
        assert!(q.iter().all(|l| l.len() <= 76), "{q:?}");
        assert_eq!(q[0].len(), 76);
        assert!(q[0].ends_with('='));
        assert_eq!(&q[q.len() - 2..], ["a=3Db=20", ".x =C3=A9"]);
        assert_eq!(
            auth_mechanisms(&["SIZE 10".into(), "AUTH LOGIN plain".into()]),
            ["LOGIN", "PLAIN"]
        );
    }
}

/// The client against a real SMTP server (Python's aiosmtpd, scripts/lib/smtp_oracle.py)
/// that decodes what it receives the way a reader's mail program does.
#[cfg(test)]
mod oracle {
    use super::*;
    use crate::config::Secret;
    use std::io::{BufRead, BufReader as StdBufReader};
    use std::process::{Child, Command, Stdio};

    const SHORT: Mail<'static> = Mail {
        subject: "s",
        body: "b",
        helo: "h",
    };

    struct Oracle {
        child: Child,
        port: u16,
        out: std::path::PathBuf,
        _dir: TempDir,
    }

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl Drop for Oracle {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn available() -> bool {
        let ok = Command::new(crate::shared::test_python3())
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: Debian's python3-aiosmtpd is not installed (scripts/test installs it)");
        }
        ok
    }

    /// Starts the oracle with `args`; `tls` makes a certificate for 127.0.0.1 first.
    fn start(args: &[&str], tls: Option<&str>) -> Oracle {
        let dir = std::env::temp_dir().join(format!(
            "hafront-smtp-oracle-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        let (cert, key) = (dir.0.join("c.pem"), dir.0.join("k.pem"));
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if let Some(flag) = tls {
            let st = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "1",
                ])
                .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(st.success());
            argv.extend([
                flag.to_string(),
                cert.display().to_string(),
                key.display().to_string(),
            ]);
        }
        let out = dir.0.join("received.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/smtp_oracle.py");
        let mut child = Command::new(crate::shared::test_python3())
            .arg(script)
            .arg(&out)
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        StdBufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .expect("port N")
            .parse()
            .unwrap();
        Oracle {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    impl Oracle {
        fn cfg(&self, tls: SmtpTls, auth: bool) -> SmtpConfig {
            SmtpConfig {
                server: format!("127.0.0.1:{}", self.port),
                from: "hafront@example.org".into(),
                to: vec!["ops@example.org".into()],
                tls,
                ca_file: (tls != SmtpTls::None).then(|| self._dir.0.join("c.pem")),
                timeout: std::time::Duration::from_secs(20),
                username: auth.then(|| "alert".into()),
                password: auth.then(|| Secret::new("s3cret: pa$$")),
            }
        }

        fn received(&self) -> Vec<serde_json::Value> {
            std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    /// Subjects and bodies that a hand-written client gets wrong: a non-ASCII subject
    /// (raw UTF-8 in a header is not RFC 5322), a long subject, a body with lines
    /// starting with '.', non-ASCII text, a 2,000-character line (RFC 5322: 998 at most;
    /// aiosmtpd refuses it) and trailing blanks. Each must arrive as it was written.
    #[tokio::test]
    async fn texts_arrive_as_written() {
        if !available() {
            return;
        }
        let o = start(&[], None);
        let long = "x".repeat(2000);
        let cases: Vec<(String, String)> = vec![
            (
                "VRRP web: MASTER → BACKUP (prio 100) — nœud «a»".into(),
                "état: bascule\nsecond line".into(),
            ),
            ("s".repeat(300) + " é", "ok".into()),
            ("dots".into(), ".\n..\n.leading dot\nend.\n".into()),
            ("long line".into(), format!("before\n{long}\nafter")),
            ("blanks".into(), "trailing blank \ntab\t\n=equals= \n".into()),
        ];
        for (subject, body) in &cases {
            send(
                &o.cfg(SmtpTls::None, false),
                &Mail {
                    subject,
                    body,
                    helo: "h",
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{subject:?}: {e}"));
        }
        let got = o.received();
        assert_eq!(got.len(), cases.len());
        for ((subject, body), r) in cases.iter().zip(&got) {
            assert_eq!(r["subject"], subject.as_str(), "{r}");
            let decoded = r["body"].as_str().unwrap().replace("\r\n", "\n");
            assert_eq!(decoded.trim_end_matches('\n'), body.trim_end_matches('\n'), "{r}");
            assert!(r["max_line"].as_u64().unwrap() <= 998, "{r}");
            assert_eq!(r["ascii"], true, "7-bit clean without 8BITMIME: {r}");
            assert_eq!(r["defects"], serde_json::json!([]), "{r}");
            assert!(
                r["message_id"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("@example.org>")),
                "{r}"
            );
        }
    }

    /// AUTH with whichever of PLAIN and LOGIN the server offers (some offer only
    /// LOGIN), over STARTTLS and implicit TLS, against the test's own CA.
    #[tokio::test]
    async fn auth_mechanisms_and_tls_modes() {
        if !available() {
            return;
        }
        for (mechs, tls, flag) in [
            ("PLAIN", SmtpTls::Starttls, "--starttls"),
            ("LOGIN", SmtpTls::Starttls, "--starttls"),
            ("LOGIN", SmtpTls::Tls, "--implicit-tls"),
            ("PLAIN,LOGIN", SmtpTls::Tls, "--implicit-tls"),
        ] {
            let o = start(&["--auth", mechs], Some(flag));
            let what = format!("{mechs} {flag}");
            send(
                &o.cfg(tls, true),
                &Mail {
                    subject: &what,
                    body: "b",
                    helo: "h",
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            let got = o.received();
            assert_eq!(got.len(), 1, "{what}");
            assert_eq!(got[0]["login"], "alert", "{what}: {}", got[0]);
            assert_eq!(got[0]["tls"], true, "{what}: {}", got[0]);
        }
        // A wrong password is refused and said so.
        let o = start(&["--auth", "LOGIN"], Some("--starttls"));
        let mut cfg = o.cfg(SmtpTls::Starttls, true);
        cfg.password = Some(Secret::new("wrong"));
        let e = send(&cfg, &SHORT).await.unwrap_err();
        assert!(e.contains("AUTH LOGIN password: expected 235"), "{e}");
        assert!(
            !e.contains(&base64_lite::encode(b"wrong")),
            "the password is not in the error: {e}"
        );
        // No AUTH offered at all while credentials are set: an error naming it.
        let o = start(&[], Some("--starttls"));
        let e = send(&o.cfg(SmtpTls::Starttls, true), &SHORT).await.unwrap_err();
        assert!(e.contains("does not offer AUTH"), "{e}");
    }
}
