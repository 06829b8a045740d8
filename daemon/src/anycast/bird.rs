//! BIRD's control socket, read only: `show protocols` (BGP sessions) and `show bfd
//! sessions`, for status and metrics. Bounded: one connection per poll, a timeout
//! for all of it, at most [`REPLY_MAX`] bytes read per command.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::shared::{BirdProtocol, BirdStatus};

/// The most read of one reply (a router with thousands of protocols is cut short,
/// and says so).
pub const REPLY_MAX: u64 = 256 * 1024;
/// The time one poll (connect, both commands) gets.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks BIRD at `socket` for its BGP and BFD sessions (the BFD sessions from the
/// BIRD at `bfd_socket` when BFD runs in one of its own, as it must for a BIRD
/// restart without a flap: docs/architecture.md, "Anycast"). Never fails: what went
/// wrong is in `error`, with `reachable` false.
pub async fn poll(socket: &Path, bfd_socket: Option<&Path>) -> BirdStatus {
    let mut status = BirdStatus {
        socket: socket.display().to_string(),
        ..Default::default()
    };
    let both = async {
        let (protocols, mut bfd) = query(socket).await?;
        if let Some(s) = bfd_socket {
            bfd = query(s).await?.1;
        }
        Ok::<_, String>((protocols, bfd))
    };
    match tokio::time::timeout(POLL_TIMEOUT, both).await {
        Ok(Ok((protocols, bfd))) => {
            status.reachable = true;
            status.bgp = parse_protocols(&protocols);
            status.bfd = parse_bfd(&bfd);
        }
        Ok(Err(e)) => status.error = Some(e),
        Err(_) => status.error = Some(format!("no answer within {POLL_TIMEOUT:?}")),
    }
    status
}

async fn query(socket: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r.take(3 * REPLY_MAX));
    // The greeting: `0001 BIRD 2.0.12 ready.`
    read_reply(&mut r).await?;
    w.write_all(b"show protocols\n")
        .await
        .map_err(|e| e.to_string())?;
    let protocols = read_reply(&mut r).await?;
    w.write_all(b"show bfd sessions\n")
        .await
        .map_err(|e| e.to_string())?;
    // BIRD without a BFD protocol answers with an error: no sessions.
    let bfd = read_reply(&mut r).await.unwrap_or_default();
    Ok((protocols, bfd))
}

/// One reply: lines up to the one whose code is followed by a space (the last).
/// Codes 8xxx and 9xxx are errors.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut total = 0u64;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("BIRD closed the connection mid-reply".into());
        }
        total += n as u64;
        if total > REPLY_MAX {
            return Err(format!("reply longer than {REPLY_MAX} bytes"));
        }
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        let b = line.as_bytes();
        let coded = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit);
        if coded && b[4] == b' ' {
            if matches!(b[0], b'8' | b'9') {
                return Err(format!("BIRD: {}", &line[5..]));
            }
            lines.push(line);
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// The text of a reply line without its code (`1002-` or a continuation's space).
fn text(line: &str) -> (&str, &str) {
    let b = line.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) {
        (&line[..4], &line[5..])
    } else {
        ("", line.strip_prefix(' ').unwrap_or(line))
    }
}

/// `show protocols`: `name proto table state since info...`; BGP ones kept.
pub fn parse_protocols(lines: &[String]) -> std::collections::BTreeMap<String, BirdProtocol> {
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let (code, rest) = text(line);
        if code == "2002" {
            continue; // the header
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() >= 4 && f[1] == "BGP" {
            out.insert(
                f[0].to_string(),
                BirdProtocol {
                    state: f[3].to_string(),
                    info: f.get(5..).map(|i| i.join(" ")).unwrap_or_default(),
                },
            );
        }
    }
    out
}

/// `show bfd sessions`: `address interface state since interval timeout`.
pub fn parse_bfd(lines: &[String]) -> std::collections::BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|line| {
            let f: Vec<&str> = text(line).1.split_whitespace().collect();
            (f.len() >= 3 && f[0].parse::<IpAddr>().is_ok()).then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    /// Replies as BIRD 2.0.12 (Debian's bird2) prints them.
    #[test]
    fn parses_protocols_and_bfd_sessions() {
        let p = lines(
            "2002-Name       Proto      Table      State  Since         Info\n\
             1002-device1    Device     ---        up     19:20:01.123  \n \
             kern_any   Kernel     master4    up     19:20:01.123  \n \
             bfd1       BFD        ---        up     19:20:01.123  \n \
             r1         BGP        ---        up     19:20:02.456  Established   \n \
             r2         BGP        ---        start  19:20:02.456  Active        Socket: Connection refused\n\
             0000 ",
        );
        let bgp = parse_protocols(&p);
        assert_eq!(bgp.len(), 2, "{bgp:?}");
        assert_eq!(bgp["r1"].state, "up");
        assert_eq!(bgp["r1"].info, "Established");
        assert_eq!(bgp["r2"].info, "Active Socket: Connection refused");
        let b = lines(
            "1020-bfd1:\n     IP address                Interface  State      Since         Interval  Timeout\n     \
             198.51.100.1              veth0      Up         19:20:02.500    0.100    0.300\n     \
             2001:db8::1               veth0      Down       19:20:02.500    1.000    0.000\n0000 ",
        );
        let bfd = parse_bfd(&b);
        assert_eq!(bfd.get("198.51.100.1").map(String::as_str), Some("Up"));
        assert_eq!(bfd.get("2001:db8::1").map(String::as_str), Some("Down"));
        assert_eq!(bfd.len(), 2);
    }

    #[tokio::test]
    async fn a_reply_is_bounded_and_errors_are_errors() {
        let long = format!("1002-{}\n", "x".repeat(REPLY_MAX as usize));
        let mut r = BufReader::new(long.as_bytes());
        assert!(read_reply(&mut r).await.unwrap_err().contains("longer"));
        let mut r = BufReader::new(&b"8003 No protocols match\n"[..]);
        assert!(read_reply(&mut r).await.unwrap_err().contains("No protocols"));
        let mut r = BufReader::new(&b"1002-partial\n"[..]);
        assert!(read_reply(&mut r).await.is_err());
        let status = poll(Path::new("/nonexistent/bird.ctl"), None).await;
        assert!(!status.reachable && status.error.is_some());
    }

    /// A fake BIRD on a Unix socket: the greeting, then a fixed reply per command.
    fn fake_bird(path: &Path, protocols: &'static str, bfd: &'static str) {
        let l = tokio::net::UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"0001 BIRD 2.0.12 ready.\n").await.unwrap();
                let mut cmd = String::new();
                while r.read_line(&mut cmd).await.unwrap_or(0) > 0 {
                    let reply = if cmd.contains("bfd") { bfd } else { protocols };
                    w.write_all(reply.as_bytes()).await.unwrap();
                    cmd.clear();
                }
            }
        });
    }

    /// BFD in a BIRD of its own (the layout that survives a restart of the BGP
    /// BIRD): the BFD sessions are read from `bfd_socket`, the BGP ones from the
    /// BGP BIRD, which has no BFD protocol.
    #[tokio::test]
    async fn bfd_sessions_from_a_bfd_only_bird() {
        let dir = std::env::temp_dir().join(format!("hafront-bird-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (bgp, bfd) = (dir.join("bird.ctl"), dir.join("bfd.ctl"));
        fake_bird(
            &bgp,
            "2002-Name       Proto      Table      State  Since         Info\n\
             1002-r1         BGP        ---        up     19:20:02.456  Established   \n0000 \n",
            "9001 There is no BFD protocol running\n",
        );
        fake_bird(
            &bfd,
            "2002-Name       Proto      Table      State  Since         Info\n0000 \n",
            "1020-bfd1:\n     IP address                Interface  State      Since         Interval  Timeout\n     \
             198.51.100.1              eth0       Up         19:20:02.500    0.100    0.500\n0000 \n",
        );
        let alone = poll(&bgp, None).await;
        assert!(alone.reachable, "{alone:?}");
        assert_eq!(alone.bgp["r1"].info, "Established");
        assert!(alone.bfd.is_empty(), "{alone:?}");
        let split = poll(&bgp, Some(&bfd)).await;
        assert!(split.reachable, "{split:?}");
        assert_eq!(split.bgp["r1"].info, "Established");
        assert_eq!(
            split.bfd.get("198.51.100.1").map(String::as_str),
            Some("Up"),
            "{split:?}"
        );
        let gone = poll(&bgp, Some(&dir.join("none.ctl"))).await;
        assert!(!gone.reachable && gone.error.is_some(), "{gone:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
