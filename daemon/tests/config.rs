//! Configuration: layering (defaults < files < env), validation with the key and
//! source named, redaction, and the `check-config` command's exit codes.

// figment::Jail closures return figment::Result, whose error is large by design.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use figment::Jail;
use hafront::config::{Config, ConfigError, REDACTED};
use hafront::preflight::{load, LoadOptions};

const BASE: &str = r#"
[node]
name = "node-a"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
virtual_ips = ["192.0.2.100/24"]
"#;

fn opts(files: &[&str], env: bool) -> LoadOptions {
    LoadOptions {
        files: files.iter().map(PathBuf::from).collect(),
        env,
        ..Default::default()
    }
}

/// Loads `files` (written into a jail) expecting failure; returns "key|source|message" lines.
fn errors(jail: &mut Jail, files: &[(&str, &str)], env: bool) -> Vec<(String, String, String)> {
    for (name, text) in files {
        jail.create_file(name, text).unwrap();
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    match load(&opts(&names, env)) {
        Ok(cfg) => panic!("expected an error, got {cfg:#?}"),
        Err(e) => e
            .issues()
            .into_iter()
            .map(|i| (i.key, i.source, i.message))
            .collect(),
    }
}

/// `text` as a.toml must fail with an error on `key` (from a.toml) containing `needle`.
fn expect_error(text: &str, key: &str, needle: &str) {
    Jail::expect_with(|jail| {
        let errs = errors(jail, &[("a.toml", text)], false);
        assert!(
            errs.iter()
                .any(|(k, s, m)| k == key && s == "a.toml" && m.contains(needle)),
            "config {text:?}: want {key} ~ {needle:?}, got {errs:#?}"
        );
        Ok(())
    });
}

fn one_error(base_extra: &str, key: &str, needle: &str) {
    expect_error(&format!("{BASE}{base_extra}"), key, needle)
}

#[test]
fn defaults_fill_everything_but_the_instance_identity() {
    Jail::expect_with(|jail| {
        jail.create_file("a.toml", BASE)?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        assert_eq!(cfg.node.name, "node-a");
        assert_eq!(cfg.runtime_dir, PathBuf::from("/run/hafront"));
        assert_eq!(cfg.log.level, "info");
        let web = &cfg.vrrp.instances["web"];
        assert_eq!(web.priority, 100);
        assert_eq!(u8::from(web.version), 3);
        assert_eq!(web.advert_interval, Duration::from_secs(1));
        assert!(web.preempt);
        assert_eq!(web.preempt_delay, Duration::ZERO);
        assert!(web.unicast_peers.is_empty());
        assert!(web.accept);
        assert_eq!(web.garp.master_burst, 5);
        assert_eq!(web.garp.master_delay, Duration::from_secs(5));
        assert_eq!(web.garp.master_repeat, 5);
        assert_eq!(web.garp.refresh, None);
        Ok(())
    });
}

#[test]
fn no_file_at_all_is_a_valid_empty_node() {
    Jail::expect_with(|_| {
        let cfg = load(&opts(&[], false)).unwrap();
        assert!(cfg.vrrp.instances.is_empty());
        assert!(!cfg.node.name.is_empty(), "node.name defaults to the host name");
        Ok(())
    });
}

#[test]
fn later_files_win_and_env_wins_over_files() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "shared.toml",
            &format!("{BASE}priority = 150\nadvert_interval = \"100ms\"\n"),
        )?;
        jail.create_file(
            "node-b.toml",
            "[node]\nname = \"node-b\"\n[vrrp.instances.web]\npriority = 100\n",
        )?;
        let cfg = load(&opts(&["shared.toml", "node-b.toml"], true)).unwrap();
        assert_eq!(cfg.node.name, "node-b");
        assert_eq!(cfg.vrrp.instances["web"].priority, 100);
        assert_eq!(
            cfg.vrrp.instances["web"].advert_interval,
            Duration::from_millis(100)
        );

        jail.set_env("HAFRONT_VRRP__INSTANCES__WEB__PRIORITY", "90");
        jail.set_env(
            "HAFRONT_VRRP__INSTANCES__WEB__UNICAST_PEERS",
            "[192.0.2.2, 192.0.2.3]",
        );
        jail.set_env("HAFRONT_NODE__NAME", "from-env");
        let cfg = load(&opts(&["shared.toml", "node-b.toml"], true)).unwrap();
        assert_eq!(cfg.node.name, "from-env");
        assert_eq!(cfg.vrrp.instances["web"].priority, 90);
        assert_eq!(cfg.vrrp.instances["web"].unicast_peers.len(), 2);

        // --no-env ignores the environment.
        let cfg = load(&opts(&["shared.toml", "node-b.toml"], false)).unwrap();
        assert_eq!(cfg.vrrp.instances["web"].priority, 100);
        Ok(())
    });
}

#[test]
fn durations_as_strings_or_seconds() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!("{BASE}advert_interval = 0.1\npreempt_delay = \"1m 30s\"\n"),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        assert_eq!(
            cfg.vrrp.instances["web"].advert_interval,
            Duration::from_millis(100)
        );
        assert_eq!(cfg.vrrp.instances["web"].preempt_delay, Duration::from_secs(90));
        Ok(())
    });
    one_error(
        "preempt_delay = \"soon\"\n",
        "vrrp.instances.web.preempt_delay",
        "invalid duration",
    );
}

#[test]
fn unknown_keys_are_errors_naming_key_and_source() {
    one_error("prority = 150\n", "vrrp.instances.web.prority", "unknown key");
    Jail::expect_with(|jail| {
        let errs = errors(
            jail,
            &[("a.toml", &format!("{BASE}[vrrp.instances.web.garp]\nburst = 3\n"))],
            false,
        );
        assert_eq!(errs[0].0, "vrrp.instances.web.garp.burst");
        assert_eq!(errs[0].1, "a.toml");
        jail.set_env("HAFRONT_VRRP__TYPO", "1");
        let errs = errors(jail, &[("b.toml", BASE)], true);
        assert_eq!(errs[0].0, "vrrp.typo");
        assert_eq!(errs[0].1, "environment variable HAFRONT_VRRP__TYPO");
        Ok(())
    });
}

#[test]
fn env_errors_name_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("HAFRONT_VRRP__INSTANCES__WEB__PRIORITY", "300");
        let errs = errors(jail, &[("a.toml", BASE)], true);
        assert_eq!(errs[0].0, "vrrp.instances.web.priority");
        assert_eq!(
            errs[0].1,
            "environment variable HAFRONT_VRRP__INSTANCES__WEB__PRIORITY"
        );
        assert!(errs[0].2.contains("1..255"), "{errs:?}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("HAFRONT_VRRP__INSTANCES__WEB__ADVERT_INTERVAL", "15ms");
        let errs = errors(jail, &[("a.toml", BASE)], true);
        assert_eq!(errs[0].0, "vrrp.instances.web.advert_interval");
        assert_eq!(
            errs[0].1,
            "environment variable HAFRONT_VRRP__INSTANCES__WEB__ADVERT_INTERVAL"
        );
        Ok(())
    });
}

/// Found by fuzz/config_load: figment parses an environment value as a TOML-like
/// value, recursively, with no depth limit. `HAFRONT_NODE__NAME=[[[[...` (5,000
/// brackets) overflowed the stack: the daemon and check-config aborted at start or
/// reload ("fatal runtime error: stack overflow"). It must be an error naming the
/// variable; ordinary nesting still loads.
#[test]
fn deeply_nested_env_value_is_an_error_not_a_stack_overflow() {
    Jail::expect_with(|jail| {
        jail.set_env("HAFRONT_NODE__NAME", "[".repeat(5000));
        let errs = errors(jail, &[("a.toml", BASE)], true);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "node.name");
        assert_eq!(errs[0].1, "environment variable HAFRONT_NODE__NAME");
        assert!(errs[0].2.contains("nests 5000 levels"), "{errs:?}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("a.toml", BASE)?;
        // Brackets inside a quoted string do not nest.
        jail.set_env("HAFRONT_NODE__NAME", format!("\"{}\"", "[".repeat(100)));
        jail.set_env(
            "HAFRONT_VRRP__INSTANCES__WEB__TRACK_CHECKS",
            "[{name = \"web\", weight = -10}]",
        );
        jail.create_file(
            "b.toml",
            "[checks.web]\nkind = \"tcp\"\ntarget = \"192.0.2.11:80\"\n",
        )?;
        let cfg = load(&opts(&["a.toml", "b.toml"], true)).unwrap();
        assert_eq!(cfg.node.name, "[".repeat(100));
        assert_eq!(cfg.vrrp.instances["web"].track_checks.len(), 1);
        Ok(())
    });
}

/// Found by fuzz/config_load: figment's string unescaping slices the value at a
/// character count used as a byte index, so a quoted `HAFRONT_*` value with a
/// non-ASCII character before its first `\` escape panicked ("end byte index 2 is
/// not a char boundary"): `HAFRONT_NODE__NAME='"é\n"'` stopped hafront and
/// check-config. It must be an error naming the variable; an escape first, or no
/// escape, still loads.
#[test]
fn non_ascii_before_an_escape_in_an_env_string_is_an_error_not_a_panic() {
    Jail::expect_with(|jail| {
        jail.set_env("HAFRONT_NODE__NAME", "\"é\\n\"");
        let errs = errors(jail, &[("a.toml", BASE)], true);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "node.name");
        assert_eq!(errs[0].1, "environment variable HAFRONT_NODE__NAME");
        assert!(errs[0].2.contains("before its first \\"), "{errs:?}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("a.toml", BASE)?;
        jail.set_env("HAFRONT_NODE__NAME", "\"\\u00e9-é\"");
        assert_eq!(load(&opts(&["a.toml"], true)).unwrap().node.name, "é-é");
        jail.set_env("HAFRONT_NODE__NAME", "\"é-é\"");
        assert_eq!(load(&opts(&["a.toml"], true)).unwrap().node.name, "é-é");
        Ok(())
    });
}

#[test]
fn protocol_rules() {
    let k = |f: &str| format!("vrrp.instances.web.{f}");
    // (extra TOML for [vrrp.instances.web] without vrid/virtual_ips, key, message part)
    let cases: &[(&str, &str, &str)] = &[
        ("vrid = 0\nvirtual_ips = [\"192.0.2.100/24\"]\n", "vrid", "1..255"),
        (
            "vrid = 256\nvirtual_ips = [\"192.0.2.100/24\"]\n",
            "vrid",
            "out of range",
        ),
        (
            "vrid = 1\npriority = 0\nvirtual_ips = [\"192.0.2.100/24\"]\n",
            "priority",
            "1..255",
        ),
        ("vrid = 1\nvirtual_ips = []\n", "virtual_ips", "at least one"),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.1/24\", \"192.0.2.1/24\"]\n",
            "virtual_ips",
            "twice",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"224.0.0.1/24\"]\n",
            "virtual_ips",
            "unicast",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.300/24\"]\n",
            "virtual_ips.0",
            "invalid",
        ),
        (
            "vrid = 1\nversion = 4\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "version",
            "4",
        ),
        (
            "vrid = 1\nversion = 2\nvirtual_ips = [\"2001:db8::1/64\"]\n",
            "virtual_ips",
            "IPv4 only",
        ),
        (
            "vrid = 1\nversion = 2\nadvert_interval = \"1500ms\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "advert_interval",
            "whole seconds",
        ),
        (
            "vrid = 1\nadvert_interval = \"15ms\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "advert_interval",
            "steps of 10ms",
        ),
        (
            "vrid = 1\nadvert_interval = \"41s\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "advert_interval",
            "40.95s",
        ),
        (
            "vrid = 1\nadvert_interval = \"0s\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "advert_interval",
            "10ms",
        ),
        (
            "vrid = 1\nauth_pass = \"x\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "auth_pass",
            "only in VRRPv2",
        ),
        (
            "vrid = 1\nversion = 2\nauth_pass = \"123456789\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "auth_pass",
            "1 to 8",
        ),
        (
            "vrid = 1\nvip_label = \"eth1:web\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "vip_label",
            "interface name",
        ),
        (
            "vrid = 1\nunicast_peers = [\"2001:db8::2\"]\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "unicast_peers",
            "family",
        ),
        (
            "vrid = 1\nunicast_source = \"192.0.2.1\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "unicast_source",
            "unicast_peers",
        ),
        (
            "vrid = 1\npreempt_delay = \"2000s\"\nvirtual_ips = [\"192.0.2.1/24\"]\n",
            "preempt_delay",
            "1000s",
        ),
        (
            "vrid = 1\nchecksum_compat = true\nvirtual_ips = [\"2001:db8::1/64\"]\n",
            "checksum_compat",
            "IPv4",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.1/24\"]\n[vrrp.instances.web.garp]\nmaster_burst = 0\n",
            "garp.master_burst",
            "1..100",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.1/24\"]\n[vrrp.instances.web.garp]\nrefresh = \"10ms\"\n",
            "garp.refresh",
            "1s",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.1/24\"]\n[vrrp.instances.web.garp]\nextra_if_interval = \"1500ms\"\n",
            "garp.extra_if_interval",
            "whole seconds",
        ),
        (
            "vrid = 1\nvirtual_ips = [\"192.0.2.1/24\"]\n[vrrp.instances.web.garp]\nextra_if_interval = \"2d\"\n",
            "garp.extra_if_interval",
            "86400s",
        ),
        ("virtual_ips = [\"192.0.2.1/24\"]\n", "vrid", "required"),
    ];
    for (extra, field, needle) in cases {
        expect_error(
            &format!("[vrrp.instances.web]\ninterface = \"eth0\"\n{extra}"),
            &k(field),
            needle,
        );
    }
}

#[test]
fn instance_level_rules() {
    one_error(
        "[vrrp.instances.Web]\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.9/24\"]\n",
        "vrrp.instances.Web",
        "a-z",
    );
    one_error(
        "[vrrp.instances.api]\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.9/24\"]\n",
        "vrrp.instances.web.vrid",
        "already used by instance \"api\"",
    );
    // The same VRID on another family or interface is another virtual router.
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{BASE}[vrrp.instances.web6]\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"2001:db8::9/64\"]\n\
                 [vrrp.instances.other]\ninterface = \"eth1\"\nvrid = 51\nvirtual_ips = [\"192.0.2.8/24\"]\n"
            ),
        )?;
        assert_eq!(load(&opts(&["a.toml"], false)).unwrap().vrrp.instances.len(), 3);
        Ok(())
    });
    one_error("[log]\nlevel = \"loud=[\"\n", "log.level", "log filter");
}

#[test]
fn all_problems_are_reported_at_once() {
    Jail::expect_with(|jail| {
        let text = "[vrrp.instances.web]\ninterface = \"eth0\"\nvrid = 0\npriority = 0\nvirtual_ips = []\n";
        let errs = errors(jail, &[("a.toml", text)], false);
        let keys: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
        for want in [
            "vrrp.instances.web.vrid",
            "vrrp.instances.web.priority",
            "vrrp.instances.web.virtual_ips",
        ] {
            assert!(keys.contains(&want), "{keys:?}");
        }
        Ok(())
    });
}

#[test]
fn file_errors() {
    Jail::expect_with(|jail| {
        let errs = errors(jail, &[("a.toml", "[vrrp.instances.web\ninterface = 1\n")], false);
        assert_eq!(errs[0].1, "a.toml");
        assert!(errs[0].2.contains("line 1"), "{errs:?}");
        match load(&opts(&["missing.toml"], false)) {
            Err(ConfigError::File { path, .. }) => assert_eq!(path, PathBuf::from("missing.toml")),
            other => panic!("{other:?}"),
        }
        Ok(())
    });
}

#[test]
fn secrets_are_redacted_and_env_numbers_are_strings() {
    Jail::expect_with(|jail| {
        jail.create_file("a.toml", &format!("{BASE}version = 2\n"))?;
        jail.set_env("HAFRONT_VRRP__INSTANCES__WEB__AUTH_PASS", "12345678");
        let cfg: Config = load(&opts(&["a.toml"], true)).unwrap();
        let pass = cfg.vrrp.instances["web"].auth_pass.as_ref().unwrap();
        assert_eq!(pass.expose(), "12345678");
        let printed = cfg.to_redacted_toml();
        assert!(
            !printed.contains("12345678") && printed.contains(REDACTED),
            "{printed}"
        );
        assert!(!format!("{cfg:?}").contains("12345678"));
        // The printed configuration is itself a valid configuration (except the secret).
        jail.create_file("printed.toml", &printed.replace(REDACTED, "abc"))?;
        let again = load(&opts(&["printed.toml"], false)).unwrap();
        assert_eq!(again.vrrp.instances["web"].vrid, 51);
        Ok(())
    });
}

#[test]
fn check_config_exit_codes() {
    let dir = std::env::temp_dir().join(format!("hafront-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, format!("{BASE}version = 2\nauth_pass = \"secret12\"\n")).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("{BASE}priority = 0\n")).unwrap();
    let run = |file: &PathBuf, env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hafront"));
        // Not the test process environment: Jail tests set HAFRONT_* in it concurrently.
        cmd.env_clear();
        cmd.arg("check-config").arg("-c").arg(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&good, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("vrid = 51") && !stdout.contains("secret12"),
        "{stdout}"
    );

    let out = run(&bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vrrp.instances.web.priority") && stderr.contains("bad.toml"),
        "{stderr}"
    );

    let out = run(&good, &[("HAFRONT_VRRP__INSTANCES__WEB__VRID", "0")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HAFRONT_VRRP__INSTANCES__WEB__VRID"), "{stderr}");

    // An exec check found on PATH (issue 13): refused, naming the check, also
    // offline (a pure rule).
    let relative = dir.join("relative.toml");
    std::fs::write(
        &relative,
        format!("{BASE}version = 2\n[checks.up]\nkind = \"exec\"\ncommand = [\"true\", \"-x\"]\n"),
    )
    .unwrap();
    for extra in [None, Some("--offline")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hafront"));
        cmd.env_clear().arg("check-config").arg("-c").arg(&relative);
        cmd.args(extra);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("checks.up.command") && stderr.contains("must be an absolute path"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipvs_services() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{BASE}[ipvs.services.web]\naddress = \"192.0.2.100:80\"\nscheduler = \"wrr\"\nforwarding = \"dr\"\n\
                 persistence = \"50s\"\nmaster_of = \"web\"\n\
                 real_servers = [ {{ address = \"192.0.2.11:80\", weight = 1 }}, {{ address = \"192.0.2.12:80\", weight = 2 }} ]\n"
            ),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        let web = &cfg.ipvs.services["web"];
        assert_eq!(web.real_servers.len(), 2);
        assert_eq!(web.quorum, 1);
        assert_eq!(web.persistence, Some(Duration::from_secs(50)));
        Ok(())
    });
    let svc = |extra: &str| format!("[ipvs.services.web]\n{extra}\n");
    let cases: &[(&str, &str, &str)] = &[
        ("address = \"192.0.2.100:80\"\nscheduler = \"fastest\"", "scheduler", "not an IPVS scheduler"),
        ("address = \"192.0.2.100:80\"\nfwmark = 3", "fwmark", "either address or fwmark"),
        ("scheduler = \"rr\"", "address", "required"),
        ("address = \"192.0.2.100:80\"\nmaster_of = \"db\"", "master_of", "no VRRP instance named \"db\""),
        ("address = \"192.0.2.100:0\"", "address", "port 0"),
        ("address = \"192.0.2.100:80\"\nscheduler_flags = [\"sh-port\"]", "scheduler_flags", "does not apply"),
        (
            "address = \"192.0.2.100:80\"\nreal_servers = [ { address = \"[2001:db8::1]:80\" } ]",
            "real_servers.0",
            "family",
        ),
        (
            "address = \"192.0.2.100:80\"\nreal_servers = [ { address = \"192.0.2.1:80\" }, { address = \"192.0.2.1:80\" } ]",
            "real_servers.1",
            "twice",
        ),
        ("address = \"192.0.2.100:80\"\npersistence_prefix = 24", "persistence_prefix", "only applies"),
        ("address = \"192.0.2.100:80\"\nforwarding = \"magic\"", "forwarding", "unknown variant"),
    ];
    for (extra, field, needle) in cases {
        one_error(&svc(extra), &format!("ipvs.services.web.{field}"), needle);
    }
}

#[test]
fn ipvs_sysctls() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{BASE}[ipvs.sysctl]\nsync_version = 1\nsync_period = 10\nsync_refresh_period = 5\n\
                 expire_nodest_conn = true\nconn_reuse_mode = 0\n"
            ),
        )?;
        jail.set_env("HAFRONT_IPVS__SYSCTL__SLOPPY_TCP", "false");
        let cfg = load(&opts(&["a.toml"], true)).unwrap();
        let s = &cfg.ipvs.sysctl;
        // sync_period alone keeps the kernel's threshold.
        assert_eq!(
            s.writes(Some((4, 50))),
            [
                ("sync_version", "1".to_string()),
                ("sync_threshold", "4 10".to_string()),
                ("sync_refresh_period", "5".to_string()),
                ("expire_nodest_conn", "1".to_string()),
                ("conn_reuse_mode", "0".to_string()),
                ("sloppy_tcp", "0".to_string()),
            ]
        );
        Ok(())
    });
    let cases: &[(&str, &str, &str)] = &[
        ("sync_version = 2", "sync_version", "0 or 1"),
        (
            "sync_threshold = 50\nsync_period = 50",
            "sync_threshold",
            "below sync_period",
        ),
        ("sync_retries = 4", "sync_retries", "0..3"),
        ("sync_ports = 3", "sync_ports", "1, 2, 4"),
        ("conn_reuse_mode = 4", "conn_reuse_mode", "0..3"),
        ("sync_qlen_max = 0", "sync_qlen_max", "at least 1"),
        ("sync_sock_size = 3000000000", "sync_sock_size", "at most"),
        ("expire_nodest_conn = 1", "expire_nodest_conn", "bool"),
        ("sync_tresholds = 3", "sync_tresholds", "unknown key"),
    ];
    for (extra, field, needle) in cases {
        one_error(
            &format!("[ipvs.sysctl]\n{extra}\n"),
            &format!("ipvs.sysctl.{field}"),
            needle,
        );
    }
    // A threshold below a period of 0 is fine (sync on state changes only).
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!("{BASE}[ipvs.sysctl]\nsync_threshold = 3\nsync_period = 0\n"),
        )?;
        load(&opts(&["a.toml"], false)).unwrap();
        Ok(())
    });
}

#[test]
fn tracking_and_sync_groups() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{BASE}track_interfaces = [ {{ name = \"eth1\" }} ]\n\
                 track_scripts = [ {{ name = \"chk\", weight = -20 }} ]\n\
                 track_files = [ {{ name = \"maint\" }} ]\n\
                 [vrrp.instances.db]\ninterface = \"eth0\"\nvrid = 52\nvirtual_ips = [\"192.0.2.101/24\"]\n\
                 [vrrp.sync_groups.edge]\ninstances = [\"web\", \"db\"]\n\
                 [scripts.chk]\ncommand = [\"/bin/true\"]\ninterval = \"2s\"\nfall = 2\n\
                 [files.maint]\npath = \"/run/hafront/maint\"\n"
            ),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        let web = &cfg.vrrp.instances["web"];
        assert_eq!(web.track_interfaces[0].weight, 0, "weight 0 (fault) by default");
        assert_eq!(web.track_scripts[0].weight, -20);
        assert_eq!(cfg.scripts["chk"].rise, 1);
        assert_eq!(cfg.vrrp.sync_groups["edge"].instances.len(), 2);
        Ok(())
    });
    let k = "vrrp.instances.web";
    one_error(
        "track_scripts = [ { name = \"nope\" } ]\n",
        &format!("{k}.track_scripts.0"),
        "no script named",
    );
    one_error(
        "track_checks = [ { name = \"web\" } ]\n",
        &format!("{k}.track_checks.0"),
        "no check named",
    );
    one_error(
        "track_files = [ { name = \"x\" } ]\n",
        &format!("{k}.track_files.0"),
        "no tracked file",
    );
    one_error(
        "track_interfaces = [ { name = \"eth1\", weight = 300 } ]\n",
        &format!("{k}.track_interfaces.0"),
        "-253..253",
    );
    one_error(
        "[scripts.chk]\ncommand = [\"true\"]\n",
        "scripts.chk.command",
        "absolute path",
    );
    one_error(
        "[vrrp.sync_groups.g]\ninstances = [\"web\", \"ghost\"]\n",
        "vrrp.sync_groups.g.instances",
        "ghost",
    );
}

#[test]
fn services_notify_and_split_brain_rules() {
    one_error(
        "track_services = [ { name = \"nginx\", weight = -60 } ]\n",
        "vrrp.instances.web.track_services.0",
        "no service named \"nginx\"",
    );
    one_error(
        "[services.nginx]\nkind = \"nginx\"\n",
        "services.nginx.config",
        "is required for kind = \"nginx\"",
    );
    one_error(
        "[services.web]\nkind = \"command\"\ncommand = [\"sleep\", \"9\"]\n",
        "services.web.command",
        "must be an absolute path",
    );
    one_error(
        "[services.h]\nkind = \"httpd\"\nconfig = \"/etc/apache2/apache2.conf\"\nrun_on = \"master\"\n",
        "services.h.instance",
        "needs the instance",
    );
    one_error(
        "[services.h]\nkind = \"httpd\"\nconfig = \"/x.conf\"\nrun_on = \"master\"\ninstance = \"nope\"\n",
        "services.h.instance",
        "no VRRP instance named \"nope\"",
    );
    one_error(
        "track_services = [ { name = \"h\" } ]\n[services.h]\nkind = \"httpd\"\nconfig = \"/x.conf\"\nrun_on = \"master\"\ninstance = \"web\"\n",
        "vrrp.instances.web.track_services.0",
        "cannot be tracked",
    );
    one_error(
        "[services.n]\nkind = \"nginx\"\nconfig = \"/x.conf\"\nrestart_delay = 0\n",
        "services.n.restart_delay",
        "no tight restart loop",
    );
    one_error(
        "[services.n]\nkind = \"nginx\"\npidfile = \"/run/n.pid\"\nsystemd_unit = \"nginx.service\"\n",
        "services.n.systemd_unit",
        "not both",
    );
    one_error(
        "[services.n]\nkind = \"nginx\"\nconfig = \"/x.conf\"\ncheck = \"web\"\n",
        "services.n.check",
        "no check named \"web\"",
    );
    one_error(
        "notify_master = [\"notify.sh\"]\n",
        "vrrp.instances.web.notify_master",
        "absolute path",
    );
    one_error(
        "split_brain_probe = \"10ms\"\n",
        "vrrp.instances.web.split_brain_probe",
        "at least 100ms",
    );
    one_error(
        "[notify.smtp]\nserver = \"2001:db8::5\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n",
        "notify.smtp.server",
        "host:port",
    );
    one_error(
        "[notify.smtp]\nserver = \"mail:25\"\nfrom = \"a@example.org\"\nto = [\"b\"]\n",
        "notify.smtp.to",
        "entry 0 (\"b\") is not an e-mail address",
    );
    one_error(
        "[notify.smtp]\nserver = \"mail:25\"\nfrom = \"alerts@exämple.org\"\nto = [\"b@example.org\"]\n",
        "notify.smtp.from",
        "xn-- form",
    );
    one_error(
        "[notify.smtp]\nserver = \"mail:25\"\nfrom = \"a@example.org\"\nto = [\"ops team@example.org\"]\n",
        "notify.smtp.to",
        "entry 0 (\"ops team@example.org\") is not an e-mail address",
    );
    one_error(
        "[notify.smtp]\nserver = \"mail:25\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n",
        "notify.smtp.tls",
        "starttls",
    );
    one_error(
        "[[notify.webhooks]]\nurl = \"ftp://198.51.100.7/\"\n",
        "notify.webhooks.0.url",
        "only http",
    );
    one_error(
        "[notify]\nsmtp_server = \"x\"\n",
        "notify.smtp_server",
        "unknown key",
    );
}

#[test]
fn services_and_notify_defaults_and_redaction() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                "{BASE}track_services = [ {{ name = \"nginx\" }} ]\n\
                 [services.nginx]\nkind = \"nginx\"\nconfig = \"/etc/nginx/nginx.conf\"\n\
                 [notify.smtp]\nserver = \"mail.example.org:587\"\nfrom = \"a@example.org\"\n\
                 to = [\"b@example.org\"]\nusername = \"u\"\npassword = \"hunter2\"\n\
                 [[notify.webhooks]]\nurl = \"https://hooks.example.org/x\"\n\
                 headers = {{ Authorization = \"Bearer s3cret\" }}\n"
            ),
        )?;
        let mut cfg = load(&opts(&["a.toml"], false)).unwrap();
        let s = &cfg.services["nginx"];
        assert_eq!(s.max_restarts, 5);
        assert_eq!(s.restart_delay, Duration::from_millis(100));
        assert_eq!(s.restart_delay_max, Duration::from_secs(30));
        assert_eq!(s.healthy_after, Duration::from_secs(10));
        assert_eq!(cfg.vrrp.instances["web"].track_services[0].weight, 0);
        assert!(cfg.vrrp.instances["web"].fast_preempt);
        assert_eq!(cfg.notify.timeout, Duration::from_secs(10));
        assert!(cfg.security.script_security);
        // Userinfo in a webhook URL is refused (below); were one there, it is not printed.
        cfg.notify.webhooks[0].url = "https://u:pw@hooks.example.org/x".into();
        let text = cfg.to_redacted_toml();
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(!text.contains("u:pw"), "{text}");
        assert!(text.contains(REDACTED));
        jail.create_file(
            "b.toml",
            "[[notify.webhooks]]\nurl = \"https://u:pw@hooks.example.org/x\"\n",
        )?;
        let e = load(&opts(&["a.toml", "b.toml"], false)).unwrap_err().to_string();
        assert!(
            e.contains("user:password in the URL is not supported") && !e.contains("u:pw"),
            "{e}"
        );
        Ok(())
    });
}

/// `check-config --offline` checks what the file says and nothing of this machine
/// (the NixOS module runs it in the build sandbox, where the token file, the
/// script user and the certificates do not exist); plain `check-config` checks both.
#[test]
fn check_config_offline_reads_nothing_of_the_machine() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("hafront-offline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A script in a directory everyone can write to: a root daemon refuses it.
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o777)).unwrap();
    let machine = format!(
        "{BASE}track_scripts = [ {{ name = \"s\" }} ]\n\
         [api]\nlisten = \"127.0.0.1:9165\"\ntoken_file = \"/nonexistent/hafront/api-token\"\n\
         [security]\nscript_user = \"hafront-no-such-user\"\n\
         [scripts.s]\ncommand = [\"{}\"]\n\
         [checks.tls]\nkind = \"https\"\nurl = \"https://192.0.2.1/\"\nca_file = \"/nonexistent/hafront/ca.pem\"\n\
         client_cert = \"/nonexistent/hafront/c.pem\"\nclient_key = \"/nonexistent/hafront/k.pem\"\n",
        script.display()
    );
    let file = dir.join("machine.toml");
    std::fs::write(&file, &machine).unwrap();
    let run = |file: &PathBuf, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hafront"));
        cmd.env_clear()
            .arg("check-config")
            .args(extra)
            .arg("-c")
            .arg(file);
        cmd.output().unwrap()
    };

    let out = run(&file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for key in ["api.token_file", "security.script_user", "checks.tls.ca_file"] {
        assert!(
            stderr.contains(key),
            "check-config must check {key} here: {stderr}"
        );
    }
    if nix::unistd::geteuid().is_root() {
        assert!(stderr.contains("scripts.s.command"), "{stderr}");
    }

    let out = run(&file, &["--offline"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--offline: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the file itself says is still checked.
    let pure = format!(
        "{machine}tls_verify = false\n[checks.half]\nkind = \"https\"\nurl = \"https://192.0.2.2/\"\n\
         client_cert = \"/nonexistent/hafront/c.pem\"\n"
    )
    .replace("/nonexistent/hafront/api-token", "api-token");
    let file = dir.join("pure.toml");
    std::fs::write(&file, pure).unwrap();
    let out = run(&file, &["--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (key, why) in [
        ("api.token_file", "absolute path"),
        ("checks.tls.ca_file", "no effect with tls_verify = false"),
        ("checks.half.client_key", "required with client_cert"),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(key) && l.contains(why)),
            "--offline must still report {key} ({why}): {stderr}"
        );
    }
    std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14, defect 8: an environment variable for an instance no file defines (a
/// typo of its name) is reported as that, naming the variable and the instance,
/// not as a missing `interface` blamed on a variable never set.
#[test]
fn env_var_for_an_unknown_instance_names_it() {
    Jail::expect_with(|jail| {
        jail.set_env("HAFRONT_VRRP__INSTANCES__WBE__PRIORITY", "90");
        let errs = errors(jail, &[("a.toml", BASE)], true);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        let (key, source, message) = &errs[0];
        assert_eq!(key, "vrrp.instances.wbe");
        assert_eq!(
            source,
            "environment variable HAFRONT_VRRP__INSTANCES__WBE__PRIORITY"
        );
        assert!(message.contains("\"wbe\""), "{message}");
        assert!(
            message.contains("web"),
            "the defined instances are listed: {message}"
        );
        assert!(!message.contains("interface is required"), "{message}");
        Ok(())
    });
}

/// Issue 14, defect 8: a prefix length out of range names the prefix as written.
#[test]
fn bad_prefix_length_names_what_was_written() {
    let text = BASE.replace("192.0.2.100/24", "192.0.2.100/33");
    Jail::expect_with(|jail| {
        let errs = errors(jail, &[("a.toml", &text)], false);
        assert!(
            errs.iter()
                .any(|(k, s, m)| k.starts_with("vrrp.instances.web.virtual_ips")
                    && s == "a.toml"
                    && m.contains("192.0.2.100/33")
                    && m.contains("prefix length 33")
                    && !m.contains("invalid IP address syntax")),
            "{errs:#?}"
        );
        Ok(())
    });
    let text = BASE.replace("192.0.2.100/24", "2001:db8::1/129");
    Jail::expect_with(|jail| {
        let errs = errors(jail, &[("a.toml", &text)], false);
        assert!(
            errs.iter()
                .any(|(_, _, m)| m.contains("2001:db8::1/129") && m.contains("prefix length 129")),
            "{errs:#?}"
        );
        Ok(())
    });
}

/// Issue 14, defect 3: the split-brain probe is on by default for an instance with
/// a VIP (two-way VRRP loss has no in-band signal), off with "0s"; an IPv6-only
/// instance probes too (Neighbor Solicitation, splitbrain/ndp.rs).
#[test]
fn split_brain_probe_default() {
    use hafront::config::SPLIT_BRAIN_PROBE_DEFAULT;
    Jail::expect_with(|jail| {
        let v6 = BASE.replace("192.0.2.100/24", "2001:db8::100/64");
        jail.create_file("a.toml", BASE)?;
        jail.create_file("off.toml", &format!("{BASE}split_brain_probe = \"0s\"\n"))?;
        jail.create_file("v6.toml", &v6)?;
        let every =
            |f: &str| load(&opts(&[f], false)).unwrap().vrrp.instances["web"].split_brain_probe_every();
        assert_eq!(every("a.toml"), Some(SPLIT_BRAIN_PROBE_DEFAULT));
        assert_eq!(every("off.toml"), None);
        assert_eq!(every("v6.toml"), Some(SPLIT_BRAIN_PROBE_DEFAULT));
        Ok(())
    });
}

/// Issue 13: any local user, a local web app (SSRF) or a browser page reaches a
/// loopback port, so every TCP listener needs the token; a token file's token
/// gets the same 16-character minimum as an inline one.
#[test]
fn tcp_listener_needs_a_token_of_16_characters() {
    let dir = std::env::temp_dir().join(format!("hafront-api-token-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let check = |name: &str, api: &str| {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, format!("{BASE}[api]\n{api}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hafront"))
            .env_clear()
            .arg("check-config")
            .arg("-c")
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for listen in ["127.0.0.1:9165", "[::1]:9165"] {
        let (code, stderr) = check("open", &format!("listen = \"{listen}\"\n"));
        assert_eq!(code, Some(2), "{listen} without a token accepted: {stderr}");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("api.listen") && l.contains("api.token_file")),
            "{stderr}"
        );
    }
    for (name, token, ok) in [("short", "0123456789", false), ("good", "0123456789abcdef", true)] {
        let file = dir.join(name);
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let (code, stderr) = check(
            name,
            &format!(
                "listen = \"127.0.0.1:9165\"\ntoken_file = \"{}\"\n",
                file.display()
            ),
        );
        if ok {
            assert_eq!(code, Some(0), "{stderr}");
        } else {
            assert_eq!(
                code,
                Some(2),
                "a {}-character token file accepted: {stderr}",
                token.len()
            );
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains("api.token_file") && l.contains("at least 16")),
                "{stderr}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// use_vmac, vmac_name, vmac_xmit_base (issue 20): names are checked and unique,
/// the options need use_vmac.
#[test]
fn vmac_rules() {
    one_error(
        "vmac_name = \"vrrp.51\"\n",
        "vrrp.instances.web.vmac_name",
        "only used with use_vmac",
    );
    one_error(
        "vmac_xmit_base = true\n",
        "vrrp.instances.web.vmac_xmit_base",
        "only used with use_vmac",
    );
    one_error(
        "use_vmac = true\nvmac_name = \"eth0\"\n",
        "vrrp.instances.web.vmac_name",
        "must differ from interface",
    );
    one_error(
        "use_vmac = true\nvmac_name = \"bad name\"\n",
        "vrrp.instances.web.vmac_name",
        "not an interface name",
    );
    one_error(
        "use_vmac = true\nvmac_name = \"v1\"\n[vrrp.instances.api]\ninterface = \"eth0\"\nvrid = 52\n\
         virtual_ips = [\"192.0.2.9/24\"]\nuse_vmac = true\nvmac_name = \"v1\"\n",
        "vrrp.instances.web.vmac_name",
        "already the macvlan of instance \"api\"",
    );
    one_error(
        "use_vmac = true\nvip_label = \"eth0:x\"\n",
        "vrrp.instances.web.vip_label",
        "vrrp.51",
    );
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!("{BASE}use_vmac = true\nvmac_xmit_base = true\n"),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        assert_eq!(
            cfg.vrrp.instances["web"].vmac_ifname().as_deref(),
            Some("vrrp.51")
        );
        Ok(())
    });
}

/// use_ipvlan, ipvlan_address, ipvlan_mode (issue 20): as keepalived, IPv4 needs
/// the address, of the instance's family; not with use_vmac; the options need
/// use_ipvlan.
#[test]
fn ipvlan_rules() {
    let k = "vrrp.instances.web";
    one_error(
        "use_ipvlan = true\n",
        &format!("{k}.ipvlan_address"),
        "required with use_ipvlan for IPv4",
    );
    one_error(
        "use_ipvlan = true\nipvlan_address = \"2001:db8::7/64\"\n",
        &format!("{k}.ipvlan_address"),
        "not of the instance's family",
    );
    one_error(
        "use_ipvlan = true\nipvlan_address = \"192.0.2.100/24\"\n",
        &format!("{k}.ipvlan_address"),
        "is a VIP of the instance",
    );
    one_error(
        "use_ipvlan = true\nuse_vmac = true\nipvlan_address = \"192.0.2.7/24\"\n",
        &format!("{k}.use_ipvlan"),
        "exclude each other",
    );
    one_error(
        "ipvlan_address = \"192.0.2.7/24\"\n",
        &format!("{k}.ipvlan_address"),
        "only used with use_ipvlan",
    );
    one_error(
        "ipvlan_mode = \"vepa\"\n",
        &format!("{k}.ipvlan_mode"),
        "only used with use_ipvlan",
    );
    one_error(
        "use_ipvlan = true\nipvlan_address = \"192.0.2.7/24\"\nvmac_xmit_base = true\n",
        &format!("{k}.vmac_xmit_base"),
        "only used with use_vmac",
    );
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!(
                // The VIPs stay on interface (as keepalived): the label is interface's.
                "{BASE}use_ipvlan = true\nipvlan_address = \"192.0.2.7/24\"\nipvlan_mode = \"private\"\n\
                 vip_label = \"eth0:web\"\n"
            ),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        let web = &cfg.vrrp.instances["web"];
        assert_eq!(web.vmac_ifname().as_deref(), Some("vrrp.51"));
        assert_eq!(web.ipvlan_mode, hafront::config::IpvlanMode::Private);
        assert_eq!(web.vip_ifname(), "eth0");
        Ok(())
    });
}

/// Issue 20 §3: routes, rules and per-VIP options are checked, the error naming
/// the field.
#[test]
fn virtual_routes_rules_and_vip_options_name_the_field() {
    let i = "vrrp.instances.web";
    one_error(
        r#"virtual_routes = [ { to = "0.0.0.0/0", via = "2001:db8::1" } ]"#,
        &format!("{i}.virtual_routes.0.via"),
        "family",
    );
    one_error(
        r#"virtual_routes = [ { to = "198.51.100.0/24" } ]"#,
        &format!("{i}.virtual_routes.0.to"),
        "needs via or dev",
    );
    one_error(
        r#"virtual_routes = [ { to = "198.51.100.0/24", type = "blackhole", dev = "eth1" } ]"#,
        &format!("{i}.virtual_routes.0.type"),
        "no via or dev",
    );
    one_error(
        r#"virtual_routes = [ { to = "198.51.100.0/24", dev = "eth1", table = 0 } ]"#,
        &format!("{i}.virtual_routes.0.table"),
        "1..",
    );
    one_error(
        r#"virtual_rules = [ { from = "192.0.2.0/24", table = 100, priority = 0 } ]"#,
        &format!("{i}.virtual_rules.0.priority"),
        "1..",
    );
    one_error(
        r#"virtual_rules = [ { from = "192.0.2.0/24", priority = 10 } ]"#,
        &format!("{i}.virtual_rules.0.table"),
        "required",
    );
    one_error(
        r#"virtual_rules = [ { from = "192.0.2.0/24", to = "2001:db8::/32", table = 1, priority = 10 } ]"#,
        &format!("{i}.virtual_rules.0.to"),
        "family",
    );
    one_error(
        r#"virtual_ips_excluded = ["192.0.2.100/24"]"#,
        &format!("{i}.virtual_ips_excluded"),
        "listed twice",
    );
    one_error(
        "[vrrp.instances.web.vip_options.\"192.0.2.9/24\"]\ndev = \"eth1\"",
        &format!("{i}.vip_options.192.0.2.9/24"),
        "not one of virtual_ips",
    );
    one_error(
        "[vrrp.instances.web.vip_options.\"192.0.2.100/24\"]\ndev = \"eth1\"\nlabel = \"eth0:x\"",
        &format!("{i}.vip_options.192.0.2.100/24.label"),
        "must start with the interface name \"eth1\"",
    );
}

#[test]
fn anycast_groups_are_validated_naming_the_key() {
    let any = "[anycast.web]\n";
    one_error(
        &format!("{any}prefixes = []\n"),
        "anycast.web.prefixes",
        "at least one prefix",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/24\"]\n"),
        "anycast.web.prefixes.0",
        "host bits",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\n[anycast.db]\nprefixes = [\"203.0.113.10/32\"]\n"),
        "anycast.web.prefixes.0",
        "already announced by anycast \"db\"",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\ntable = 254\n"),
        "anycast.web.table",
        "the kernel's own",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\ninterface = \"eth0\"\n"),
        "anycast.web.interface",
        "VRRP instance's interface",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\ntrack_checks = [ {{ name = \"nope\" }} ]\n"),
        "anycast.web.track_checks.0",
        "no check named \"nope\"",
    );
    one_error(
        &format!(
            "{any}prefixes = [\"203.0.113.10/32\"]\ntrack_checks = [ {{ name = \"c\", weight = -10 }} ]\n\
             [checks.c]\nkind = \"tcp\"\ntarget = \"192.0.2.1:80\"\n"
        ),
        "anycast.web.track_checks.0",
        "weight -10: anycast has no priority",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\ndrain = \"2m\"\n"),
        "anycast.web.drain",
        "more than 60s",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\nbfd_socket = \"bfd.ctl\"\n"),
        "anycast.web.bfd_socket",
        "must be an absolute path",
    );
    one_error(
        &format!("{any}prefixes = [\"203.0.113.10/32\"]\npriority = 5\n"),
        "anycast.web.priority",
        "unknown key",
    );
    // The defaults.
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            &format!("{BASE}[anycast.web]\nprefixes = [\"203.0.113.10/32\", \"2001:db8:10::10/128\"]\n"),
        )?;
        let cfg = load(&opts(&["a.toml"], false)).unwrap();
        let a = &cfg.anycast["web"];
        assert_eq!(a.prefixes.len(), 2);
        assert_eq!(
            (a.interface.as_str(), a.table, a.drain),
            ("hafront-any", 100, Duration::from_secs(5))
        );
        assert_eq!(a.bird_socket, PathBuf::from("/run/bird/bird.ctl"));
        assert_eq!(a.bfd_socket, None);
        Ok(())
    });
}

/// An IPVS service on an anycast address (issue 17): a scheduler that directors do
/// not compute alike, or mh/sh without sloppy_tcp, loses the flows the routers'
/// ECMP rehash moves between directors (vm-tests/anycast-ipvs). Advice, printed by
/// check-config as warnings naming the key; the configuration stays valid.
#[test]
fn anycast_ipvs_services_get_advice() {
    let advice = |extra: &str| -> Vec<String> {
        let mut out = Vec::new();
        Jail::expect_with(|jail| {
            jail.create_file(
                "a.toml",
                &format!(
                    "[node]\nname = \"d1\"\n[anycast.web]\nprefixes = [\"203.0.113.0/28\"]\n\
                     [ipvs.services.web]\naddress = \"203.0.113.10:80\"\nforwarding = \"dr\"\n\
                     real_servers = [ {{ address = \"198.51.100.21:80\" }} ]\n{extra}"
                ),
            )?;
            let cfg = load(&opts(&["a.toml"], false)).unwrap();
            out = hafront::config::anycast::advice(&cfg)
                .into_iter()
                .map(|p| format!("{}: {}", p.key.join("."), p.message))
                .collect();
            Ok(())
        });
        out
    };
    // The default scheduler (wlc).
    let a = advice("");
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0].starts_with("ipvs.services.web.scheduler: service 203.0.113.10:80 is in anycast \"web\"'s 203.0.113.0/28: with \"wlc\"")
            && a[0].contains("use \"mh\""),
        "{a:?}"
    );
    // mh without sloppy_tcp; then with it false.
    for sysctl in ["", "[ipvs.sysctl]\nsloppy_tcp = false\n"] {
        let a = advice(&format!("scheduler = \"mh\"\n{sysctl}"));
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].starts_with("ipvs.sysctl.sloppy_tcp: service 203.0.113.10:80"),
            "{a:?}"
        );
    }
    // What the advice asks for: none.
    assert_eq!(
        advice("scheduler = \"mh\"\n[ipvs.sysctl]\nsloppy_tcp = true\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        advice("scheduler = \"sh\"\n[ipvs.sysctl]\nsloppy_tcp = true\n"),
        Vec::<String>::new()
    );
    // The sync daemon on every director (no instance: both daemons).
    assert_eq!(
        advice("scheduler = \"rr\"\n[ipvs.sync]\ninterface = \"eth0\"\n"),
        Vec::<String>::new()
    );
    // SCTP asks for sloppy_sctp; UDP has no handshake to miss.
    let a = advice("scheduler = \"mh\"\nprotocol = \"sctp\"\n[ipvs.sysctl]\nsloppy_tcp = true\n");
    assert!(
        a.len() == 1 && a[0].starts_with("ipvs.sysctl.sloppy_sctp: "),
        "{a:?}"
    );
    assert_eq!(
        advice("scheduler = \"mh\"\nprotocol = \"udp\"\n"),
        Vec::<String>::new()
    );
    // A service outside the anycast prefixes: none.
    assert_eq!(
        advice("[ipvs.services.other]\naddress = \"198.51.100.100:80\"\nscheduler = \"rr\"\nscheduler_flags = []\n")
            .iter()
            .filter(|a| a.starts_with("ipvs.services.other"))
            .count(),
        0
    );

    // check-config prints it on stderr, and succeeds.
    let dir = std::env::temp_dir().join(format!("hafront-anyipvs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.toml");
    std::fs::write(
        &file,
        "[node]\nname = \"d1\"\n[anycast.web]\nprefixes = [\"203.0.113.10/32\"]\n\
         [ipvs.services.web]\naddress = \"203.0.113.10:80\"\nscheduler = \"rr\"\nforwarding = \"dr\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hafront"))
        .env_clear()
        .args(["check-config", "--offline", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("hafront: warning: ipvs.services.web.scheduler: service 203.0.113.10:80 is in anycast \"web\"'s 203.0.113.10/32: with \"rr\""),
        "{stderr}"
    );
}

/// The spacing of announcements is bounded (issue 20): more than 10 s between two
/// packets is an error naming the key.
#[test]
fn announcement_spacing_is_bounded() {
    expect_error(
        "[vrrp]\ngarp_interval = \"11s\"\n",
        "vrrp.garp_interval",
        "at most 10s",
    );
    expect_error(
        "[vrrp]\nna_interval = \"1m\"\n",
        "vrrp.na_interval",
        "at most 10s",
    );
}
