//! keepalived.conf import: the values keepalived 2.4.3 derives when it completes an
//! instance (keepalived/vrrp/vrrp.c `vrrp_complete_instance` and the handlers of
//! vrrp_parser.c), one rule a test, each on a small configuration whose import
//! must also load through the ordinary configuration loader.

use std::time::Duration;

use hafront::config::{self, Config, InstanceConfig, Layer, Sources};
use hafront::keepalived::{import_str, Import, Options, WarningKind};
use hafront::vrrp::Version;

fn load(text: &str) -> (Config, Import) {
    let imp = import_str(text, "k.conf", Options::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let src = Sources {
        layers: vec![Layer {
            name: "imported".into(),
            toml: imp.toml.clone(),
        }],
        ..Sources::default()
    };
    let cfg = config::load(&src).unwrap_or_else(|e| panic!("emitted TOML does not load: {e}\n{}", imp.toml));
    (cfg, imp)
}

/// One instance `vi` with `body` (plus interface and VRID), after `globals`.
fn instance(globals: &str, body: &str) -> (InstanceConfig, Import) {
    let text = format!(
        "global_defs {{\n{globals}\n}}\nvrrp_instance VI {{\n  interface eth0\n  virtual_router_id 9\n{body}\n}}\n"
    );
    let (cfg, imp) = load(&text);
    (cfg.vrrp.instances["vi"].clone(), imp)
}

fn warned(imp: &Import, keyword: &str, kind: WarningKind, text: &str) -> bool {
    imp.warnings
        .iter()
        .any(|w| w.keyword == keyword && w.kind == kind && w.why.contains(text))
}

const V4: &str = "  virtual_ipaddress {\n    192.0.2.10/24\n  }";
const V6: &str = "  virtual_ipaddress {\n    2001:db8::10/64\n  }";

#[test]
fn ipv6_instance_without_version_runs_v3_whatever_the_global_default() {
    for globals in ["", "  vrrp_version 2"] {
        let (i, imp) = instance(globals, V6);
        assert_eq!(i.version, Version::V3, "{globals}\n{}", imp.toml);
    }
    // An IPv4 instance keeps the global default, and keepalived's is 2.
    assert_eq!(instance("", V4).0.version, Version::V2);
    assert_eq!(instance("  vrrp_version 3", V4).0.version, Version::V3);
}

#[test]
fn version_2_after_an_ipv6_address_is_ignored() {
    let (i, imp) = instance("", &format!("{V6}\n  version 2"));
    assert_eq!(i.version, Version::V3);
    assert!(
        warned(&imp, "version", WarningKind::Changed, "ignored"),
        "{:?}",
        imp.warnings
    );
    // Before the addresses keepalived keeps it and sends VRRPv2 over IPv6: refused,
    // with the line.
    let text =
        format!("vrrp_instance VI {{\n  interface eth0\n  virtual_router_id 9\n  version 2\n{V6}\n}}\n");
    let e = import_str(&text, "k.conf", Options::default()).unwrap_err();
    assert_eq!(e.loc.line, 4, "{e}");
    assert!(e.message.contains("VRRPv2 over IPv6"), "{e}");
    // ... except in strict mode, where keepalived sets version 3.
    let (i, imp) = instance("  vrrp_strict", &format!("  version 2\n{V6}"));
    assert_eq!(i.version, Version::V3);
    assert!(warned(&imp, "version", WarningKind::Changed, "version = 3"));
    // A second, contradicting version line is ignored.
    let (i, _) = instance("", &format!("  version 3\n  version 2\n{V4}"));
    assert_eq!(i.version, Version::V3);
    // native_ipv6: IPv6 and version 3.
    let (i, _) = instance("  vrrp_version 2", &format!("  native_ipv6\n{V6}"));
    assert_eq!(i.version, Version::V3);
}

#[test]
fn addresses_of_the_other_family_are_ignored() {
    let body = "  unicast_peer {\n    192.0.2.2\n    2001:db8::2\n  }\n  virtual_ipaddress {\n    \
                2001:db8::10/64\n    192.0.2.10/24\n    192.0.2.11/24\n  }";
    let (i, imp) = instance("", body);
    // The first address (the peer) makes the instance IPv4.
    assert_eq!(i.version, Version::V2);
    assert_eq!(
        i.virtual_ips.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["192.0.2.10/24", "192.0.2.11/24"]
    );
    assert_eq!(
        i.unicast_peers,
        ["192.0.2.2".parse::<std::net::IpAddr>().unwrap()]
    );
    for kw in ["2001:db8::10/64", "2001:db8::2"] {
        assert!(
            warned(&imp, kw, WarningKind::Dropped, "family"),
            "{kw}: {:?}",
            imp.warnings
        );
    }
}

#[test]
fn priority_follows_state_master() {
    let (i, _) = instance("", &format!("  state MASTER\n{V4}"));
    assert_eq!(i.priority, 255);
    let (i, _) = instance("", &format!("  state BACKUP\n{V4}"));
    assert_eq!(i.priority, 100);
    let (i, _) = instance("", &format!("  state MASTER\n  priority 150\n{V4}"));
    assert_eq!(i.priority, 150);
}

#[test]
fn nopreempt_is_cleared_for_the_owner_and_initial_master() {
    for body in [
        "  priority 255\n  nopreempt",
        "  state MASTER\n  priority 150\n  nopreempt",
        "  nopreempt\n  priority 255",
    ] {
        let (i, imp) = instance("", &format!("{body}\n{V4}"));
        assert!(i.preempt, "{body}");
        assert!(
            warned(&imp, "nopreempt", WarningKind::Changed, "ignored"),
            "{body}"
        );
    }
    let (i, _) = instance("", &format!("  state BACKUP\n  priority 150\n  nopreempt\n{V4}"));
    assert!(!i.preempt);
    // Under strict mode, state MASTER below 255 is BACKUP: nopreempt stays.
    let (i, _) = instance(
        "  vrrp_strict",
        &format!("  state MASTER\n  priority 150\n  nopreempt\n{V4}"),
    );
    assert!(!i.preempt);
}

#[test]
fn preempt_delay_is_cleared_where_keepalived_clears_it() {
    for (globals, body) in [
        ("", "  state MASTER\n  priority 150"),
        ("", "  priority 150\n  nopreempt"),
        ("  vrrp_strict", "  priority 150"),
    ] {
        let (i, imp) = instance(globals, &format!("{body}\n  preempt_delay 10\n{V4}"));
        assert_eq!(i.preempt_delay, Duration::ZERO, "{globals} {body}");
        assert!(
            warned(&imp, "preempt_delay", WarningKind::Changed, "cleared"),
            "{body}"
        );
    }
    let (i, _) = instance("", &format!("  state BACKUP\n  preempt_delay 10\n{V4}"));
    assert_eq!(i.preempt_delay, Duration::from_secs(10));
}

#[test]
fn accept_defaults_from_strict_mode_and_the_owner() {
    assert!(instance("", V4).0.accept);
    assert!(!instance("  vrrp_strict", V4).0.accept);
    // The address owner accepts, strict or not.
    assert!(
        instance("  vrrp_strict", &format!("  priority 255\n{V4}"))
            .0
            .accept
    );
    // Strict VRRPv2 below 255 clears an explicit accept; v3 keeps it.
    let (i, imp) = instance("  vrrp_strict", &format!("  accept\n{V4}"));
    assert!(!i.accept);
    assert!(warned(&imp, "accept", WarningKind::Changed, "accept = false"));
    assert!(
        instance("  vrrp_strict\n  vrrp_version 3", &format!("  accept\n{V4}"))
            .0
            .accept
    );
    // The instance's own strict_mode counts like vrrp_strict, and overrides it.
    assert!(!instance("", &format!("  strict_mode\n{V4}")).0.accept);
    assert!(
        instance("  vrrp_strict", &format!("  strict_mode false\n{V4}"))
            .0
            .accept
    );
}

#[test]
fn authentication_without_password_or_in_strict_mode_is_none() {
    let auth = "  authentication {\n    auth_type PASS\n  }";
    let (i, imp) = instance("", &format!("{auth}\n{V4}"));
    assert!(i.auth_pass.is_none());
    assert!(warned(
        &imp,
        "authentication",
        WarningKind::Dropped,
        "no auth_pass"
    ));
    let auth = "  authentication {\n    auth_type PASS\n    auth_pass secret\n  }";
    assert!(instance("", &format!("{auth}\n{V4}")).0.auth_pass.is_some());
    assert!(instance("", &format!("  strict_mode\n{auth}\n{V4}"))
        .0
        .auth_pass
        .is_none());
    assert!(instance("  vrrp_version 3", &format!("{auth}\n{V4}"))
        .0
        .auth_pass
        .is_none());
}

#[test]
fn advert_int_is_rounded_as_keepalived_rounds_it() {
    for (globals, value, want) in [
        ("", "1.5", Duration::from_secs(2)),
        ("", "1.4", Duration::from_secs(1)),
        ("", "0.3", Duration::from_secs(1)),
        ("  vrrp_version 3", "0.015", Duration::from_millis(20)),
        ("  vrrp_version 3", "41", Duration::from_millis(40_950)),
        ("  vrrp_version 3", "0.25", Duration::from_millis(250)),
        // Out of keepalived's range: ignored, 1 s.
        ("", "300", Duration::from_secs(1)),
        ("", "0.001", Duration::from_secs(1)),
    ] {
        let (i, imp) = instance(globals, &format!("  advert_int {value}\n{V4}"));
        assert_eq!(
            i.advert_interval, want,
            "{globals} advert_int {value}\n{}",
            imp.toml
        );
    }
}

#[test]
fn strict_mode_sends_no_garp_on_lower_priority() {
    assert!(instance("", V4).0.garp.lower_prio_burst);
    assert!(!instance("  vrrp_strict", V4).0.garp.lower_prio_burst);
    assert!(
        !instance("  vrrp_strict", &format!("  garp_lower_prio_repeat 3\n{V4}"))
            .0
            .garp
            .lower_prio_burst
    );
}

// ---- checkers (keepalived/check/check_data.c, check_api.c) -----------------------

/// The check of the first real server of a one-service configuration.
fn check(vs_body: &str, rs_body: &str, checker: &str) -> hafront::config::CheckConfig {
    let text = format!(
        "virtual_server 192.0.2.100 80 {{\n{vs_body}\n  real_server 192.0.2.11 80 {{\n{rs_body}\n    {checker}\n  }}\n}}\n"
    );
    let (cfg, _) = load(&text);
    let svc = cfg.ipvs.services.values().next().unwrap();
    cfg.checks[svc.real_servers[0].check.as_ref().unwrap()].clone()
}

const TCP: &str = "TCP_CHECK {\n    }";
const HTTP: &str = "HTTP_GET {\n      url {\n        path /\n      }\n    }";
const DNS: &str = "DNS_CHECK {\n    }";

#[test]
fn checker_timings_are_inherited_from_real_and_virtual_server() {
    let vs = "  delay_loop 7\n  retry 4\n  connect_timeout 2\n  delay_before_retry 5\n  warmup 9";
    let c = check(vs, "", TCP);
    assert_eq!(
        (c.interval, c.retries, c.timeout, c.retry_delay, c.warmup),
        (
            Duration::from_secs(7),
            4,
            Duration::from_secs(2),
            Duration::from_secs(5),
            Some(Duration::from_secs(9))
        )
    );
    // The real server's own values win over the virtual server's, the checker's over both.
    let c = check(
        vs,
        "    retry 2\n    connect_timeout 3",
        "TCP_CHECK {\n      retry 6\n    }",
    );
    assert_eq!((c.retries, c.timeout), (6, Duration::from_secs(3)));
}

#[test]
fn checker_defaults_depend_on_the_checker() {
    // delay_before_retry: 1 s, HTTP 3 s, DNS the delay_loop; retry 1, DNS 3.
    let c = check("", "", TCP);
    assert_eq!(
        (c.retries, c.retry_delay, c.interval),
        (1, Duration::from_secs(1), Duration::from_secs(60))
    );
    let c = check("", "", HTTP);
    assert_eq!((c.retries, c.retry_delay), (1, Duration::from_secs(3)));
    let c = check("  delay_loop 10", "", DNS);
    assert_eq!((c.retries, c.retry_delay), (3, Duration::from_secs(10)));
    // warmup: the delay_loop (hafront's default too).
    assert_eq!(c.warmup(), Duration::from_secs(10));
}

#[test]
fn real_servers_inherit_weight_and_virtualhost() {
    let text = "virtual_server 192.0.2.100 80 {\n  weight 7\n  virtualhost vs.example\n  \
                real_server 192.0.2.11 80 {\n    virtualhost rs.example\n    HTTP_GET {\n      url {\n        \
                path /\n      }\n    }\n  }\n  real_server 192.0.2.12 80 {\n    weight 2\n  }\n}\n";
    let (cfg, _) = load(text);
    let svc = cfg.ipvs.services.values().next().unwrap();
    assert_eq!((svc.real_servers[0].weight, svc.real_servers[1].weight), (7, 2));
    let c = &cfg.checks[svc.real_servers[0].check.as_ref().unwrap()];
    assert_eq!(c.host.as_deref(), Some("rs.example"));
}

#[test]
fn keepalived_2_names_are_read() {
    // track_file (vrrp_track_file's name since 2.1) and vrrp_delay_after_boot.
    let text =
        "global_defs {\n  vrrp_delay_after_boot 30\n}\ntrack_file tf {\n  file /run/prio\n  weight 5\n}\n\
                vrrp_instance VI {\n  interface eth0\n  virtual_router_id 9\n  track_file {\n    tf\n  }\n\
                {V4}\n}\n"
            .replace("{V4}", V4);
    let (cfg, imp) = load(&text);
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    assert_eq!(cfg.vrrp.delay_after_boot, Duration::from_secs(30));
    assert_eq!(cfg.vrrp.instances["vi"].track_files[0].weight, 5);
}

#[test]
fn v3_checksum_as_v2_is_checksum_compat_for_v3_over_ipv4() {
    let v3 = "  vrrp_version 3";
    assert!(
        instance(v3, &format!("  v3_checksum_as_v2\n{V4}"))
            .0
            .checksum_compat
    );
    assert!(
        instance(&format!("{v3}\n  v3_checksum_as_v2"), V4)
            .0
            .checksum_compat
    );
    assert!(
        !instance(
            &format!("{v3}\n  v3_checksum_as_v2"),
            &format!("  v3_checksum_as_v2 false\n{V4}")
        )
        .0
        .checksum_compat
    );
    // keepalived ignores it for VRRPv2 and IPv6.
    let (i, imp) = instance("", &format!("  v3_checksum_as_v2\n{V4}"));
    assert!(!i.checksum_compat);
    assert!(warned(&imp, "v3_checksum_as_v2", WarningKind::Changed, "ignored"));
    assert!(!instance("  v3_checksum_as_v2", V6).0.checksum_compat);
}
