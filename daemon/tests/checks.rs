//! Health checks without the network: the rise/fall state machine, expect_status
//! and digest parsing, the DNS and ICMP codecs, configuration validation, and the
//! exec probe and scheduler (real processes, no sockets). Network probes are
//! tested against real servers in scripts/lab/test_checks.sh.

// figment::Jail closures return figment::Result, whose error is large by design.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use figment::Jail;
use hafront::checks::dns;
use hafront::checks::probe::{self, echo_request, exit_verdict, parse_echo_reply, ProbeError};
use hafront::checks::{CheckSpec, CheckState, Checker, CheckerOptions, Digest, Verdict};
use hafront::config::{CheckConfig, CheckKind, StatusRange};
use hafront::preflight::{load, LoadOptions};

// ---------------------------------------------------------------- state machine

fn run(state: &mut CheckState, results: &str) -> Vec<(usize, Verdict)> {
    results
        .chars()
        .enumerate()
        .filter_map(|(i, c)| state.record(c == '+', None).map(|ch| (i, ch.to)))
        .collect()
}

#[test]
fn starts_unknown_and_needs_rise_successes() {
    let mut s = CheckState::new(2, 3);
    assert_eq!(s.verdict(), Verdict::Unknown);
    assert_eq!(run(&mut s, "+"), vec![]);
    assert_eq!(s.verdict(), Verdict::Unknown);
    assert_eq!(run(&mut s, "+"), vec![(0, Verdict::Up)]);
    assert_eq!(s.consecutive_ok(), 2);
}

#[test]
fn starts_unknown_and_needs_fall_failures() {
    let mut s = CheckState::new(2, 3);
    assert_eq!(run(&mut s, "--"), vec![]);
    assert_eq!(s.verdict(), Verdict::Unknown);
    assert_eq!(run(&mut s, "-"), vec![(0, Verdict::Down)]);
}

#[test]
fn transitions_only_after_consecutive_runs() {
    let mut s = CheckState::new(2, 3);
    // up at 1; two failures are not enough; a success resets; three go down at 7;
    // one success is not enough; two go up at 10.
    assert_eq!(
        run(&mut s, "++--+---+-++"),
        vec![(1, Verdict::Up), (7, Verdict::Down), (11, Verdict::Up)]
    );
}

#[test]
fn flapping_below_thresholds_never_changes() {
    let mut s = CheckState::new(3, 3);
    assert_eq!(run(&mut s, "+++"), vec![(2, Verdict::Up)]);
    assert_eq!(run(&mut s, "-+-+--+--+-+--+"), vec![]);
    assert_eq!(s.verdict(), Verdict::Up);
}

#[test]
fn rise_and_fall_of_one_follow_every_result() {
    let mut s = CheckState::new(1, 1);
    assert_eq!(
        run(&mut s, "+-+-"),
        vec![
            (0, Verdict::Up),
            (1, Verdict::Down),
            (2, Verdict::Up),
            (3, Verdict::Down)
        ]
    );
    // 0 is taken as 1
    let mut z = CheckState::new(0, 0);
    assert_eq!(run(&mut z, "-"), vec![(0, Verdict::Down)]);
}

#[test]
fn repeated_results_in_a_settled_state_are_silent() {
    let mut s = CheckState::new(1, 1);
    assert_eq!(run(&mut s, "++++"), vec![(0, Verdict::Up)]);
    assert_eq!(run(&mut s, "----"), vec![(0, Verdict::Down)]);
    assert_eq!(s.consecutive_fail(), 4);
}

#[test]
fn dynamic_weight_changes_while_up_are_changes() {
    let mut s = CheckState::new(2, 1);
    assert_eq!(s.record(true, Some(5)), None);
    let up = s.record(true, Some(7)).expect("up");
    assert_eq!((up.to, up.dynamic_weight), (Verdict::Up, Some(7)));
    assert_eq!(s.record(true, Some(7)), None, "same weight: no change");
    let w = s.record(true, Some(3)).expect("weight change");
    assert_eq!(
        (w.from, w.to, w.dynamic_weight),
        (Verdict::Up, Verdict::Up, Some(3))
    );
    let back = s.record(true, None).expect("back to the configured weight");
    assert_eq!(back.dynamic_weight, None);
    let down = s.record(false, None).expect("down");
    assert_eq!((down.to, down.dynamic_weight), (Verdict::Down, None));
}

#[test]
fn reconfigured_keeps_the_verdict_and_restarts_counts() {
    let mut s = CheckState::new(1, 1);
    s.record(true, Some(4));
    let r = s.reconfigured(3, 2);
    assert_eq!(r.verdict(), Verdict::Up);
    assert_eq!(r.dynamic_weight(), Some(4));
    assert_eq!(r.consecutive_ok(), 0);
    let mut r = r;
    assert_eq!(run(&mut r, "-"), vec![]);
    assert_eq!(run(&mut r, "-"), vec![(0, Verdict::Down)]);
}

// ---------------------------------------------------------------- expect_status

#[test]
fn status_ranges_parse_and_match() {
    let r: StatusRange = "200-299".parse().unwrap();
    assert!(r.contains(200) && r.contains(299) && !r.contains(300));
    assert_eq!(r.to_string(), "200-299");
    let one: StatusRange = " 204 ".parse().unwrap();
    assert_eq!((one.low, one.high), (204, 204));
    assert!("299-200".parse::<StatusRange>().unwrap_err().contains("empty"));
    assert!("99".parse::<StatusRange>().is_err());
    assert!("600".parse::<StatusRange>().is_err());
    assert!("2xx".parse::<StatusRange>().is_err());
    assert!(StatusRange::any_contains(&[], 250), "empty list = 2xx");
    assert!(!StatusRange::any_contains(&[], 301));
    let list = vec![one, "300-302".parse().unwrap()];
    assert!(StatusRange::any_contains(&list, 301));
    assert!(!StatusRange::any_contains(&list, 200));
    assert_eq!(StatusRange::list(&list), "[204, 300-302]");
    assert_eq!(StatusRange::list(&[]), "[200-299]");
}

#[test]
fn expect_status_toml_mixes_codes_and_ranges() {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct T {
        s: Vec<StatusRange>,
    }
    let t: T = toml::from_str(r#"s = [200, "301-302", "404"]"#).unwrap();
    assert_eq!(
        t.s.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["200", "301-302", "404"]
    );
    assert_eq!(
        toml::to_string(&t).unwrap().trim(),
        r#"s = [200, "301-302", 404]"#
    );
    let e = toml::from_str::<T>(r#"s = [700]"#).err().unwrap().to_string();
    assert!(e.contains("not an HTTP status code"), "{e}");
}

// ---------------------------------------------------------------- digests

#[test]
fn digests_print_as_genhash_and_parse_back() {
    // `genhash` prints the MD5 of the body in lower-case hex; md5("") is well known.
    let d = Digest::md5(b"");
    assert_eq!(d.to_string(), "md5:d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        "MD5:D41D8CD98F00B204E9800998ECF8427E".parse::<Digest>().unwrap(),
        d
    );
    assert_eq!(
        Digest::md5(b"The quick brown fox jumps over the lazy dog").to_string(),
        "md5:9e107d9d372bb6826bd81d3542a419d6"
    );
    assert_eq!(
        Digest::sha256(b"abc").to_string(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let s: Digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        .parse()
        .unwrap();
    assert_eq!(s.same_kind_of(b"abc"), s);
    assert_ne!(s.same_kind_of(b"abd"), s);
}

#[test]
fn bad_digests_are_named() {
    for (text, needle) in [
        ("d41d8cd98f00b204e9800998ecf8427e", "md5:<hex>"),
        ("md5:d41d", "32 hex digits"),
        ("sha256:d41d8cd98f00b204e9800998ecf8427e", "64 hex digits"),
        (
            "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "not a digest algorithm",
        ),
        ("md5:zz1d8cd98f00b204e9800998ecf8427e", "not hex"),
    ] {
        let e = text.parse::<Digest>().unwrap_err();
        assert!(e.contains(needle), "{text}: {e}");
    }
}

// ---------------------------------------------------------------- DNS codec

#[test]
fn dns_query_encoding() {
    let q = dns::encode_query(0x1234, "www.example.com.", dns::TYPE_AAAA);
    let want: Vec<u8> = [
        &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
        &[
            3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        ],
        &[0, 28, 0, 1],
    ]
    .concat();
    assert_eq!(q, want);
    // a relative name is the same absolute name
    assert_eq!(dns::encode_query(0x1234, "www.example.com", 28), want);
}

/// A response to `query` with the given answers (name = pointer to the question).
fn response(query: &[u8], rcode: u8, answers: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = query.to_vec();
    m[2] |= 0x80; // QR
    m[3] = 0x80 | rcode; // RA
    m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    for (t, data) in answers {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
    }
    m
}

#[test]
fn dns_response_decoding_and_verdict() {
    let q = dns::encode_query(7, "web.example", dns::TYPE_A);
    let cname = [3, b'w', b'w', b'w', 0xC0, 12];
    let r = dns::decode_response(&response(
        &q,
        0,
        &[(5, &cname), (1, &[192, 0, 2, 1]), (1, &[192, 0, 2, 2])],
    ))
    .unwrap();
    assert_eq!((r.id, r.rcode, r.answers.len()), (7, 0, 3));
    assert_eq!(r.answers[0].ttl, 3600);
    let addrs: Vec<IpAddr> = r.answers.iter().filter_map(|a| a.addr()).collect();
    assert_eq!(
        addrs,
        [
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "192.0.2.2".parse().unwrap()
        ]
    );
    let a1: IpAddr = "192.0.2.1".parse().unwrap();
    let a9: IpAddr = "192.0.2.9".parse().unwrap();
    assert_eq!(dns::check_response(&r, dns::TYPE_A, &[]), Ok(()));
    assert_eq!(dns::check_response(&r, dns::TYPE_A, &[a1]), Ok(()));
    let e = dns::check_response(&r, dns::TYPE_A, &[a1, a9]).unwrap_err();
    assert!(e.contains("lacks expected [192.0.2.9]"), "{e}");
    let e = dns::check_response(&r, dns::TYPE_AAAA, &[]).unwrap_err();
    assert_eq!(e, "no AAAA record in the answer");
    assert_eq!(dns::check_response(&r, dns::TYPE_ANY, &[]), Ok(()));

    let nx = dns::decode_response(&response(&q, 3, &[])).unwrap();
    assert_eq!(
        dns::check_response(&nx, dns::TYPE_A, &[]).unwrap_err(),
        "rcode NXDOMAIN"
    );
    let empty = dns::decode_response(&response(&q, 0, &[])).unwrap();
    assert!(dns::check_response(&empty, dns::TYPE_A, &[]).is_err());
}

#[test]
fn dns_malformed_responses_are_errors() {
    let q = dns::encode_query(7, "web.example", dns::TYPE_A);
    assert_eq!(dns::decode_response(&q), Err(dns::DecodeError::NotResponse));
    assert_eq!(dns::decode_response(&q[..5]), Err(dns::DecodeError::Short));
    let full = response(&q, 0, &[(1, &[192, 0, 2, 1])]);
    assert_eq!(
        dns::decode_response(&full[..full.len() - 2]),
        Err(dns::DecodeError::Short)
    );
    let mut bad = full.clone();
    bad[12] = 0x80; // reserved label type
    assert_eq!(dns::decode_response(&bad), Err(dns::DecodeError::BadName));
}

/// The dns probe counts only a response to its own question (name compared
/// without case); a forged one for another name is ignored.
#[test]
fn dns_response_question_must_be_the_query_s() {
    let q = dns::encode_query(7, "Web.Example", dns::TYPE_A);
    let ok = response(&dns::encode_query(7, "web.example", dns::TYPE_A), 0, &[]);
    assert!(dns::same_question(&q, &ok));
    let other_name = response(&dns::encode_query(7, "evil.example", dns::TYPE_A), 0, &[]);
    assert!(!dns::same_question(&q, &other_name));
    let other_type = response(&dns::encode_query(7, "web.example", dns::TYPE_AAAA), 0, &[]);
    assert!(!dns::same_question(&q, &other_type));
    assert!(!dns::same_question(&q, &ok[..ok.len() - 3]), "cut short");
    let mut two = ok.clone();
    two[5] = 2; // QDCOUNT 2
    assert!(!dns::same_question(&q, &two));
    assert!(!dns::same_question(&q, &[]));
}

#[test]
fn dns_names_and_types() {
    assert_eq!(dns::qtype_from_str("aaaa"), Some(28));
    assert_eq!(dns::qtype_from_str("MX"), Some(15));
    assert_eq!(dns::qtype_from_str("TYPE65"), Some(65));
    assert_eq!(dns::qtype_from_str("BOGUS"), None);
    assert!(dns::check_name("web.example.").is_ok());
    assert!(dns::check_name(&format!("{}.example", "a".repeat(64))).is_err());
    assert!(dns::check_name("a..b").is_err());
    assert!(dns::check_name("").is_err());
}

// ---------------------------------------------------------------- ICMP codec

#[test]
fn icmp_echo_request_and_reply() {
    let p = echo_request(false, 0x1234, 7, b"hafront");
    assert_eq!(&p[..2], &[8, 0]);
    // A correct checksum sums (with itself) to 0xFFFF, i.e. folds to 0.
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    assert_eq!(sum, 0xFFFF);
    let v6 = echo_request(true, 1, 2, b"x");
    assert_eq!(&v6[..4], &[128, 0, 0, 0], "ICMPv6 checksum is the kernel's");

    // A reply as a raw IPv4 socket sees it: a 20-byte IPv4 header first.
    let mut reply = vec![0x45u8; 1];
    reply.extend_from_slice(&[0; 19]);
    let mut icmp = p.clone();
    icmp[0] = 0;
    reply.extend_from_slice(&icmp);
    let r = parse_echo_reply(false, true, &reply).unwrap();
    assert_eq!((r.id, r.seq, r.data), (0x1234, 7, &b"hafront"[..]));
    assert_eq!(parse_echo_reply(false, false, &icmp).unwrap().seq, 7);
    assert!(
        parse_echo_reply(false, false, &p).is_none(),
        "a request is not a reply"
    );
    let mut r6 = v6.clone();
    r6[0] = 129;
    assert_eq!(parse_echo_reply(true, false, &r6).unwrap().id, 1);
}

// ---------------------------------------------------------------- configuration

const NODE: &str = "[node]\nname = \"node-a\"\n";

fn load_checks(jail: &mut Jail, text: &str) -> Result<BTreeMap<String, CheckConfig>, Vec<(String, String)>> {
    jail.create_file("a.toml", &format!("{NODE}{text}")).unwrap();
    match load(&LoadOptions {
        files: vec![PathBuf::from("a.toml")],
        env: false,
        ..Default::default()
    }) {
        Ok(c) => Ok(c.checks),
        Err(e) => Err(e.issues().into_iter().map(|i| (i.key, i.message)).collect()),
    }
}

fn expect_error(text: &str, key: &str, needle: &str) {
    Jail::expect_with(|jail| {
        let errs = load_checks(jail, text).expect_err("an invalid configuration");
        assert!(
            errs.iter().any(|(k, m)| k == key && m.contains(needle)),
            "want {key} ~ {needle:?}, got {errs:#?}"
        );
        Ok(())
    });
}

#[test]
fn the_issue_example_loads_with_its_defaults() {
    Jail::expect_with(|jail| {
        let checks = load_checks(
            jail,
            r#"
[checks.web]
kind = "http"
url = "http://127.0.0.1/health"
expect_status = [200]
interval = "1s"
timeout = "500ms"
rise = 2
fall = 2
"#,
        )
        .unwrap();
        let web = &checks["web"];
        assert_eq!(web.kind, CheckKind::Http);
        assert_eq!(web.interval, Duration::from_secs(1));
        assert_eq!(web.timeout, Duration::from_millis(500));
        assert_eq!((web.rise, web.fall, web.retries), (2, 2, 0));
        assert_eq!(
            web.warmup(),
            Duration::from_secs(1),
            "warm-up defaults to the interval"
        );
        assert!(web.tls_verify);
        let spec = CheckSpec::build("web", web).unwrap();
        assert_eq!(spec.warmup, Duration::from_secs(1));
        Ok(())
    });
}

#[test]
fn every_kind_loads() {
    Jail::expect_with(|jail| {
        jail.create_file("ca.pem", "")?;
        let checks = load_checks(
            jail,
            r#"
[checks.t]
kind = "tcp"
target = "192.0.2.11:80"
[checks.h]
kind = "https"
url = "https://[2001:db8::11]:8443/x?y=1"
host = "www.example"
method = "post"
body = "{}"
headers = { "Content-Type" = "application/json", Authorization = "Bearer s3cret" }
expect_status = ["200-204", 301]
expect_body = "ok"
expect_body_regex = "^o+k"
expect_digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
tls_verify = false
bind_address = "2001:db8::1"
[checks.e]
kind = "exec"
command = ["/bin/sh", "-c", "exit 0"]
dynamic_weight = true
[checks.p]
kind = "ping"
target = "2001:db8::11"
bind_interface = "eth0"
[checks.d]
kind = "dns"
server = "192.0.2.53"
query_name = "web.example"
query_type = "aaaa"
expect = ["2001:db8::80"]
[checks.s]
kind = "smtp"
target = "192.0.2.25"
helo_name = "probe.example"
[checks.u]
kind = "udp"
target = "192.0.2.9:9"
payload = "hex:00ff"
expect = "pong"
retries = 2
retry_delay = "100ms"
warmup = 0
"#,
        )
        .unwrap();
        assert_eq!(checks.len(), 7);
        for (name, c) in &checks {
            CheckSpec::build(name, c).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert_eq!(checks["u"].expect, vec!["pong".to_string()]);
        assert_eq!(checks["u"].warmup(), Duration::ZERO);
        Ok(())
    });
}

#[test]
fn printed_configuration_redacts_credentials_and_reloads() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{NODE}[checks.h]\nkind = \"http\"\nurl = \"http://192.0.2.11/\"\n\
                 headers = {{ Authorization = \"Bearer s3cret\", X-Api-Key = \"k3y\", Accept = \"text/plain\" }}\n\
                 public_headers = [\"accept\"]\n\
                 expect_status = [\"200-299\", 418]\n"
            ),
        )?;
        let mut cfg = load(&LoadOptions {
            files: vec![PathBuf::from("a.toml")],
            env: false,
            ..Default::default()
        })
        .unwrap();
        let text = cfg.to_redacted_toml();
        assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
        assert!(text.contains("Authorization = \"<redacted>\""), "{text}");
        assert!(text.contains("X-Api-Key = \"<redacted>\""), "{text}");
        assert!(text.contains("Accept = \"text/plain\""), "{text}");
        // A URL's userinfo is refused by validation; were one there, it is not printed.
        cfg.checks.get_mut("h").unwrap().url = Some("http://u:pw@192.0.2.11/x".into());
        let text = cfg.to_redacted_toml();
        assert!(
            text.contains("url = \"http://<redacted>@192.0.2.11/x\""),
            "{text}"
        );
        assert!(text.contains(r#"expect_status = ["200-299", 418]"#), "{text}");
        Ok(())
    });
}

#[test]
fn url_userinfo_and_unknown_public_headers_are_refused_without_showing_them() {
    for (extra, key, needle) in [
        (
            "url = \"http://u:pw@192.0.2.1/\"\n",
            "checks.web.url",
            "user:password",
        ),
        (
            "url = \"http://192.0.2.1/\"\nheaders = { A = \"1\" }\npublic_headers = [\"B\"]\n",
            "checks.web.public_headers",
            "\"B\" is not one of the headers",
        ),
    ] {
        expect_error(&format!("[checks.web]\nkind = \"http\"\n{extra}"), key, needle);
    }
}

#[test]
fn unknown_and_misplaced_keys_are_named() {
    expect_error(
        "[checks.web]\nkind = \"http\"\nurl = \"http://192.0.2.1/\"\nexpect_stats = [200]\n",
        "checks.web.expect_stats",
        "unknown key",
    );
    expect_error(
        "[checks.web]\nkind = \"tcp\"\ntarget = \"192.0.2.1:80\"\nurl = \"http://192.0.2.1/\"\n",
        "checks.web.url",
        "does not apply to kind = \"tcp\"",
    );
    expect_error(
        "[checks.web]\nkind = \"http\"\nurl = \"http://192.0.2.1/\"\ntls_verify = false\n",
        "checks.web.tls_verify",
        "does not apply",
    );
    expect_error(
        "[checks.x]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\nbind_interface = \"eth0\"\n",
        "checks.x.bind_interface",
        "does not apply",
    );
    expect_error(
        "[checks.x]\nkind = \"gopher\"\n",
        "checks.x.kind",
        "unknown variant",
    );
    expect_error(
        "[checks.Web]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n",
        "checks.Web",
        "check name",
    );
}

#[test]
fn kind_specific_values_are_checked() {
    let cases: &[(&str, &str, &str)] = &[
        ("kind = \"http\"", "checks.c.url", "is required"),
        (
            "kind = \"http\"\nurl = \"https://192.0.2.1/\"",
            "checks.c.url",
            "use kind = \"https\"",
        ),
        (
            "kind = \"https\"\nurl = \"http://192.0.2.1/\"",
            "checks.c.url",
            "use kind = \"http\"",
        ),
        (
            "kind = \"http\"\nurl = \"http://u:p@192.0.2.1/\"",
            "checks.c.url",
            "headers.Authorization",
        ),
        (
            "kind = \"http\"\nurl = \"http://192.0.2.1/\"\nexpect_status = [\"300-200\"]",
            "checks.c.expect_status.0",
            "empty",
        ),
        (
            "kind = \"http\"\nurl = \"http://192.0.2.1/\"\nexpect_digest = \"md5:abc\"",
            "checks.c.expect_digest",
            "hex",
        ),
        (
            "kind = \"http\"\nurl = \"http://192.0.2.1/\"\nexpect_body_regex = \"(\"",
            "checks.c.expect_body_regex",
            "unclosed",
        ),
        (
            "kind = \"http\"\nurl = \"http://192.0.2.1/\"\nmethod = \"HEAD\"\nexpect_body = \"x\"",
            "checks.c.method",
            "no body",
        ),
        (
            "kind = \"http\"\nurl = \"http://192.0.2.1/\"\nheaders = { Host = \"x\" }",
            "checks.c.headers",
            "host key",
        ),
        (
            "kind = \"https\"\nurl = \"https://192.0.2.1/\"\nca_file = \"/nonexistent/ca.pem\"",
            "checks.c.ca_file",
            "/nonexistent/ca.pem",
        ),
        (
            "kind = \"https\"\nurl = \"https://192.0.2.1/\"\nclient_cert = \"/x.pem\"",
            "checks.c.client_key",
            "is required",
        ),
        (
            "kind = \"tcp\"\ntarget = \"192.0.2.1\"",
            "checks.c.target",
            "IP:port",
        ),
        (
            "kind = \"tcp\"\ntarget = \"192.0.2.1:80\"\nbind_address = \"2001:db8::1\"",
            "checks.c.bind_address",
            "family",
        ),
        (
            "kind = \"ping\"\ntarget = \"web\"",
            "checks.c.target",
            "not an IP address",
        ),
        ("kind = \"exec\"", "checks.c.command", "is required"),
        (
            "kind = \"exec\"\ncommand = [\"/nonexistent/check\"]",
            "checks.c.command",
            "no such file",
        ),
        (
            "kind = \"dns\"\nserver = \"192.0.2.53\"\nquery_name = \"x\"\nquery_type = \"BOGUS\"",
            "checks.c.query_type",
            "not a record type",
        ),
        (
            "kind = \"dns\"\nserver = \"192.0.2.53\"\nquery_name = \"x\"\nexpect = [\"2001:db8::1\"]",
            "checks.c.expect",
            "AAAA",
        ),
        (
            "kind = \"dns\"\nserver = \"192.0.2.53\"",
            "checks.c.query_name",
            "is required",
        ),
        (
            "kind = \"udp\"\ntarget = \"192.0.2.1:7\"\npayload = \"hex:0\"",
            "checks.c.payload",
            "odd number",
        ),
        (
            "kind = \"udp\"\ntarget = \"192.0.2.1:7\"\nexpect = [\"a\", \"b\"]",
            "checks.c.expect",
            "one reply",
        ),
        (
            "kind = \"tcp\"\ntarget = \"192.0.2.1:80\"\nrise = 0",
            "checks.c.rise",
            "1..1000",
        ),
        (
            "kind = \"tcp\"\ntarget = \"192.0.2.1:80\"\ninterval = \"1ms\"",
            "checks.c.interval",
            "10ms..1h",
        ),
        (
            "kind = \"tcp\"\ntarget = \"192.0.2.1:80\"\nbind_interface = \"a/b\"",
            "checks.c.bind_interface",
            "interface",
        ),
    ];
    for (body, key, needle) in cases {
        expect_error(&format!("[checks.c]\n{body}\n"), key, needle);
    }
}

// ---------------------------------------------------------------- exec (processes, no network)

fn exec(cmd: &str, timeout_ms: u64) -> CheckConfig {
    let mut c = CheckConfig::new(CheckKind::Exec);
    c.command = vec!["/bin/sh".into(), "-c".into(), cmd.into()];
    c.timeout = Duration::from_millis(timeout_ms);
    c.interval = Duration::from_millis(50);
    c.warmup = Some(Duration::ZERO);
    c.rise = 1;
    c.fall = 1;
    c
}

#[test]
fn exit_codes_follow_misc_check() {
    assert_eq!(exit_verdict(Some(0), None, false), Ok(None));
    assert_eq!(exit_verdict(Some(1), None, true), Err(ProbeError::ExitCode(1)));
    assert_eq!(exit_verdict(Some(2), None, true), Ok(Some(0)));
    assert_eq!(exit_verdict(Some(255), None, true), Ok(Some(253)));
    assert_eq!(exit_verdict(Some(7), None, false), Err(ProbeError::ExitCode(7)));
    assert_eq!(exit_verdict(None, Some(9), true), Err(ProbeError::Signal(9)));
}

#[tokio::test(flavor = "current_thread")]
async fn exec_probe_results() {
    let spec = |cmd: &str, dynamic: bool| {
        let mut c = exec(cmd, 2000);
        c.dynamic_weight = dynamic;
        CheckSpec::build("e", &c).unwrap()
    };
    assert!(probe::run(&spec("exit 0", false)).await.is_ok());
    assert_eq!(
        probe::run(&spec("exit 1", true)).await,
        Err(ProbeError::ExitCode(1))
    );
    assert_eq!(
        probe::run(&spec("exit 12", true)).await.unwrap().dynamic_weight,
        Some(10)
    );
    assert_eq!(
        probe::run(&spec("exit 12", false)).await,
        Err(ProbeError::ExitCode(12))
    );
    assert_eq!(
        probe::run(&spec("kill -TERM $$", false)).await,
        Err(ProbeError::Signal(15))
    );
    let mut missing = exec("", 1000);
    missing.command = vec!["hafront-no-such-program".into()];
    let e = probe::run(&CheckSpec::build("e", &missing).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, ProbeError::Spawn { .. }), "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn exec_retries_until_success() {
    let dir = tempdir();
    let marker = dir.join("first");
    // Fails the first time (creating the marker), succeeds the second.
    let mut c = exec(
        &format!("[ -e {0} ] || {{ touch {0}; exit 1; }}", marker.display()),
        2000,
    );
    c.retries = 1;
    c.retry_delay = Duration::from_millis(10);
    assert!(probe::run(&CheckSpec::build("e", &c).unwrap()).await.is_ok());
    c.retries = 0;
    std::fs::remove_file(&marker).unwrap();
    assert!(probe::run(&CheckSpec::build("e", &c).unwrap()).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hafront-checks-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = tempdir();
    let pids = dir.join("pids");
    // The shell starts two grandchildren and waits: all in the command's group.
    let c = exec(
        &format!(
            "sleep 30 & echo $! >> {0}; sleep 30 & echo $! >> {0}; wait",
            pids.display()
        ),
        300,
    );
    let start = Instant::now();
    let r = probe::run(&CheckSpec::build("e", &c).unwrap()).await;
    assert_eq!(r, Err(ProbeError::Timeout(Duration::from_millis(300))));
    assert_eq!(r.unwrap_err().to_string(), "timeout after 300ms");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the probe waited for the command"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<i32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    // Reaped by init once killed: give it a moment.
    for _ in 0..100 {
        if pids.iter().all(|p| !running(*p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in pids {
        assert!(!running(p), "grandchild {p} survived the timeout");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- scheduler (exec checks)

async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<hafront::checks::CheckEvent>,
    within: Duration,
) -> hafront::checks::CheckEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
}

/// The hook that IPVS follows (instead of the event channel and the tracker) sees
/// each change once, in order, with its dynamic weight: the same changes as the
/// events, no more (a probe that changes nothing calls no hook).
#[tokio::test(flavor = "current_thread")]
async fn verdict_hook_sees_each_change_once_in_order() {
    let flag = std::env::temp_dir().join(format!("hafront-verdict-hook-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let mut cfgs = BTreeMap::new();
    cfgs.insert(
        "file".to_string(),
        exec(&format!("test -e {}", flag.display()), 1000),
    );
    let mut dynamic = exec("exit 7", 1000);
    dynamic.dynamic_weight = true;
    cfgs.insert("dyn".to_string(), dynamic);
    type Seen = Vec<(String, bool, Option<i32>)>;
    let seen: std::sync::Arc<std::sync::Mutex<Seen>> = Default::default();
    let hook_seen = seen.clone();
    let opts = CheckerOptions {
        on_verdict: Some(std::sync::Arc::new(
            move |name: &str, up: bool, weight: Option<i32>| {
                hook_seen.lock().unwrap().push((name.to_string(), up, weight));
            },
        )),
        ..Default::default()
    };
    let (_handle, mut rx) = Checker::spawn_with(&cfgs, opts).unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        let ev = next_event(&mut rx, Duration::from_secs(5)).await;
        let hooked = seen.lock().unwrap().clone();
        let this = (ev.name.clone(), ev.up, ev.dynamic_weight);
        assert!(
            hooked.contains(&this),
            "event {this:?} not seen by the hook: {hooked:?}"
        );
        events.push(this);
        if ev.name == "file" {
            // Flip the file check: down -> up -> down.
            if ev.up {
                std::fs::remove_file(&flag).unwrap();
            } else {
                std::fs::write(&flag, "").unwrap();
            }
        }
    }
    let hooked = seen.lock().unwrap().clone();
    let file: Vec<_> = hooked
        .iter()
        .filter(|(n, ..)| n == "file")
        .map(|(_, up, _)| *up)
        .collect();
    assert!(
        file.starts_with(&[false, true]),
        "file check's changes in order: {file:?}"
    );
    let dyn_changes: Vec<_> = hooked.iter().filter(|(n, ..)| n == "dyn").collect();
    assert_eq!(dyn_changes.len(), 1, "one change, not one per probe: {hooked:?}");
    assert_eq!(dyn_changes[0], &("dyn".to_string(), true, Some(5)));
    // Every hooked change became an event, and the other way round, in order.
    let hooked_file: Vec<_> = hooked.iter().filter(|(n, ..)| n == "file").collect();
    let event_file: Vec<_> = events.iter().filter(|(n, ..)| n == "file").collect();
    assert_eq!(&hooked_file[..event_file.len()], &event_file[..]);
    let _ = std::fs::remove_file(&flag);
}

#[tokio::test(flavor = "current_thread")]
async fn scheduler_publishes_changes_and_a_hung_check_blocks_nothing() {
    let mut cfgs = BTreeMap::new();
    cfgs.insert("ok".to_string(), exec("exit 0", 1000));
    cfgs.insert("bad".to_string(), exec("exit 1", 1000));
    let mut hang = exec("sleep 10", 200);
    hang.interval = Duration::from_millis(100);
    cfgs.insert("hang".to_string(), hang);
    let mut dynamic = exec("exit 7", 1000);
    dynamic.dynamic_weight = true;
    cfgs.insert("dyn".to_string(), dynamic);
    // Two probes at a time: the hung one holds at most one slot.
    let (handle, mut rx) = Checker::spawn_with(
        &cfgs,
        CheckerOptions {
            max_concurrent: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let mut seen = BTreeMap::new();
    while seen.len() < 4 {
        let ev = next_event(&mut rx, Duration::from_secs(5)).await;
        seen.insert(ev.name.clone(), ev);
    }
    assert!(seen["ok"].up, "{:?}", seen["ok"]);
    assert!(!seen["bad"].up);
    assert_eq!(seen["bad"].reason, "exit status 1");
    assert!(!seen["hang"].up);
    assert_eq!(seen["hang"].reason, "timeout after 200ms");
    assert!(seen["dyn"].up);
    assert_eq!(seen["dyn"].dynamic_weight, Some(5));

    // The healthy check keeps running at its pace despite the hung one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let st = handle.status();
    assert!(st["ok"].checks_total >= 5, "{:?}", st["ok"]);
    assert_eq!(st["ok"].up, Some(true));
    assert!(st["ok"].last_latency.is_some());
    assert_eq!(st["hang"].last_error.as_deref(), Some("timeout after 200ms"));
    assert_eq!(st["bad"].up, Some(false));
    assert!(st["bad"].consecutive_fail >= 2);
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["ok"]["kind"], "exec");
    assert!(json["ok"]["last_latency_ms"].is_f64());

    // Reload: same configuration -> nothing restarts, no event.
    let s = handle.reload(&cfgs).unwrap();
    assert_eq!(
        (s.unchanged, s.changed.len(), s.added.len(), s.removed.len()),
        (4, 0, 0, 0)
    );
    let total_before = handle.status()["ok"].checks_total;
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv())
        .await
        .is_err());
    assert!(
        handle.status()["ok"].checks_total > total_before,
        "state kept, still running"
    );

    // Changed: "bad" now succeeds -> up (verdict kept until then); "hang" removed.
    cfgs.insert("bad".to_string(), exec("exit 0", 1000));
    cfgs.remove("hang");
    let mut added = exec("exit 1", 1000);
    added.rise = 1;
    cfgs.insert("new".to_string(), added);
    let s = handle.reload(&cfgs).unwrap();
    assert_eq!(s.changed, vec!["bad".to_string()]);
    assert_eq!(s.removed, vec!["hang".to_string()]);
    assert_eq!(s.added, vec!["new".to_string()]);
    assert_eq!(
        handle.verdict("bad"),
        Some(Verdict::Down),
        "verdict kept across a change"
    );
    let mut got = BTreeMap::new();
    while got.len() < 2 {
        let ev = next_event(&mut rx, Duration::from_secs(5)).await;
        got.insert(ev.name.clone(), ev.up);
    }
    assert_eq!(
        got,
        BTreeMap::from([("bad".to_string(), true), ("new".to_string(), false)])
    );
    assert!(!handle.status().contains_key("hang"));

    // A reload with a check that cannot be built changes nothing.
    let mut broken = cfgs.clone();
    broken.get_mut("ok").unwrap().command = vec!["/nonexistent/x".into()];
    let errs = handle.reload(&broken).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "checks.ok.command: /nonexistent/x: no such file"
    );
    assert_eq!(handle.verdict("ok"), Some(Verdict::Up));

    // Dropping the last handle stops every check and closes the channel.
    drop(handle);
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "channel still open after the handle was dropped");
}

#[tokio::test(flavor = "current_thread")]
async fn warmup_spreads_first_probes() {
    let mut cfgs = BTreeMap::new();
    for i in 0..20 {
        let mut c = exec("exit 0", 1000);
        c.interval = Duration::from_secs(10);
        c.warmup = Some(Duration::from_millis(400));
        cfgs.insert(format!("c{i}"), c);
    }
    let start = Instant::now();
    let (handle, mut rx) = Checker::spawn(&cfgs).unwrap();
    let mut times = Vec::new();
    while times.len() < 20 {
        next_event(&mut rx, Duration::from_secs(5)).await;
        times.push(start.elapsed());
    }
    // Not all at once: the first and last verdicts are well apart.
    assert!(times[19] - times[0] > Duration::from_millis(100), "{times:?}");
    assert!(times[19] < Duration::from_secs(3), "{times:?}");
    handle.shutdown();
}

/// tcp checks run in their own task without a boxed probe and without a clock read
/// of the scheduler's: an answered one and a refused one keep their fixed rate (no
/// faster than the interval, a load only slows them), record their latency, and the
/// refusal shows in the status as before.
#[tokio::test(flavor = "current_thread")]
async fn tcp_checks_keep_their_rate_latency_and_errors() {
    // Connections complete in the listener's backlog (never accepted: each probe's
    // reset leaves it there, far below the backlog in this test).
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tcp = |target: String| {
        let mut c = CheckConfig::new(CheckKind::Tcp);
        c.target = Some(target);
        c.timeout = Duration::from_secs(2);
        c.interval = Duration::from_millis(50);
        c.warmup = Some(Duration::ZERO);
        c.rise = 1;
        c.fall = 1;
        c
    };
    let mut cfgs = BTreeMap::new();
    cfgs.insert("up".to_string(), tcp(open.local_addr().unwrap().to_string()));
    cfgs.insert("refused".to_string(), tcp(closed.to_string()));
    let (handle, mut rx) = Checker::spawn(&cfgs).unwrap();
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        let ev = next_event(&mut rx, Duration::from_secs(5)).await;
        seen.insert(ev.name.clone(), ev);
    }
    assert!(seen["up"].up, "{:?}", seen["up"]);
    assert!(!seen["refused"].up);
    assert_eq!(seen["refused"].reason, "connection refused");
    let before = handle.status();
    let window = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = handle.status();
    let elapsed = window.elapsed();
    for name in ["up", "refused"] {
        let probes = st[name].checks_total - before[name].checks_total;
        // At 50 ms: due times 50 ms apart, a probe due no earlier than the previous
        // one ended; at most one per interval in the window, plus the one due before
        // it and one started late (a probe that starts late does not make a burst).
        let most = (elapsed.as_millis() / 50) as u64 + 2;
        assert!(
            (1..=most).contains(&probes),
            "{name}: {probes} probes in {elapsed:?}"
        );
    }
    assert_eq!(st["up"].up, Some(true));
    assert!(st["up"].last_latency.is_some_and(|l| l < Duration::from_secs(2)));
    assert_eq!(st["up"].last_error, None);
    assert_eq!(st["refused"].up, Some(false));
    assert_eq!(st["refused"].last_error.as_deref(), Some("connection refused"));
    assert_eq!(st["refused"].last_latency, None);
    handle.shutdown();
    drop(open);
}
