//! keepalived.conf import: every configuration of the seed documents
//! (tests/data/keepalived/, one file per snippet) imports, loads through the
//! ordinary configuration loader and passes `check-config`; the imported values are
//! asserted; malformed inputs give a located error; the command line
//! (`import-keepalived`, `--keepalived-config`) behaves as documented.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hafront::config::{CheckKind, Config};
use hafront::ipvs::model::{Forward, Protocol};
use hafront::keepalived::{import_file, import_str, Import, ImportError, Options, WarningKind};
use hafront::preflight::{self, LoadOptions};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keepalived")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hafront-import-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Imports a fixture; the printed TOML, loaded from a file through the ordinary
/// loader, must equal what `--keepalived-config` loads in memory.
fn import(name: &str) -> (Config, Import) {
    let path = data(name);
    let imp = import_file(&path, Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = scratch(name);
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let from_file = Config::from_files(&[&out])
        .unwrap_or_else(|e| panic!("{name}: emitted TOML does not load: {e}\n{}", imp.toml));
    let in_memory = preflight::load(&LoadOptions {
        files: vec![],
        env: false,
        keepalived: Some(path),
        offline: false,
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(from_file, in_memory, "{name}");
    std::fs::remove_dir_all(&dir).unwrap();
    (from_file, imp)
}

/// The 1-based line of the first line of `name` that contains `needle`, outside
/// the fixture's header comment.
fn line_of(name: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(data(name)).unwrap();
    text.lines()
        .position(|l| l.contains(needle) && !l.starts_with("# "))
        .unwrap_or_else(|| panic!("{needle:?} not in {name}"))
        + 1
}

fn has_warning(imp: &Import, keyword: &str, kind: WarningKind) -> bool {
    imp.warnings
        .iter()
        .any(|w| w.keyword == keyword && w.kind == kind)
}

fn vips(cfg: &Config, inst: &str) -> Vec<String> {
    cfg.vrrp.instances[inst]
        .virtual_ips
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const SEEDS: &[&str] = &[
    "seed000_annotated.conf",
    "seed000_master.conf",
    "seed000_backup.conf",
    "seed001_master.conf",
    "seed001_backup.conf",
    "seed001_master_script.conf",
    "seed001_backup_notify.conf",
    "seed002_reference.conf",
    "seed003_master.conf",
    "seed003_backup.conf",
    "seed003_lb01.conf",
    "seed003_lb02.conf",
];

#[test]
fn every_fixture_is_listed() {
    // A fixture added to the directory must be covered here (or be the one
    // rejected on purpose).
    let mut files: Vec<String> = std::fs::read_dir(data(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    listed.push("seed002_syncgroup.conf".into());
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn seed000_nginx_pair() {
    let (a, ia) = import("seed000_annotated.conf");
    let (m, im) = import("seed000_master.conf");
    let (b, ib) = import("seed000_backup.conf");
    for (cfg, prio, node) in [(&a, 100, "LVS_1"), (&m, 100, "LVS_1"), (&b, 90, "LVS_2")] {
        assert_eq!(cfg.node.name, node);
        let i = &cfg.vrrp.instances["vi_1"];
        assert_eq!(i.interface, "enp0s3");
        assert_eq!(i.vrid, 51);
        assert_eq!(i.priority, prio);
        assert_eq!(
            i.version,
            hafront::vrrp::Version::V2,
            "keepalived's default version"
        );
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(i.auth_pass.as_ref().unwrap().expose(), "1111");
        assert_eq!(vips(cfg, "vi_1"), ["198.51.100.186/24"]);
        assert!(i.preempt);
        assert!(i.unicast_peers.is_empty() && i.unicast_source.is_none());
        assert_eq!(i.track_scripts.len(), 1);
        assert_eq!(i.track_scripts[0].name, "chk_nginx");
        assert_eq!(i.track_scripts[0].weight, -20, "vrrp_script's weight");
        let s = &cfg.scripts["chk_nginx"];
        assert_eq!(s.command, ["/etc/keepalived/nginx_check.sh"]);
        assert_eq!(s.interval, Duration::from_secs(2));
        assert!(cfg.ipvs.services.is_empty() && cfg.checks.is_empty());
    }
    for imp in [&ia, &im, &ib] {
        assert!(has_warning(imp, "mcast_src_ip", WarningKind::Dropped));
        assert!(has_warning(imp, "state", WarningKind::Changed));
        assert!(has_warning(imp, "notification_email", WarningKind::Dropped));
        assert!(has_warning(imp, "vrrp_garp_interval", WarningKind::Changed));
    }
    // Comments name the source lines.
    let l = line_of("seed000_master.conf", "vrrp_instance VI_1");
    assert!(
        im.toml
            .contains(&format!("seed000_master.conf:{l} vrrp_instance VI_1 -> vi_1")),
        "{}",
        im.toml
    );
    let l = line_of("seed000_master.conf", "priority 100");
    assert!(
        im.toml.contains(&format!("priority = 100  # line {l}")),
        "{}",
        im.toml
    );
}

#[test]
fn seed001_lvs_dr_pair() {
    for (name, prio, node) in [
        ("seed001_master.conf", 100, "lb01"),
        ("seed001_backup.conf", 90, "lb02"),
    ] {
        let (cfg, imp) = import(name);
        assert_eq!(cfg.node.name, node);
        let i = &cfg.vrrp.instances["vi_1"];
        assert_eq!((i.interface.as_str(), i.vrid, i.priority), ("ens160", 51, prio));
        assert_eq!(i.auth_pass.as_ref().unwrap().expose(), "1");
        assert_eq!(
            vips(&cfg, "vi_1"),
            ["192.0.2.100/32"],
            "no prefix: a host address"
        );
        let svc = &cfg.ipvs.services["vs_192_0_2_100_80"];
        assert_eq!(svc.address, Some(sa("192.0.2.100:80")));
        assert_eq!(svc.scheduler, "rr");
        assert_eq!(svc.forwarding, Forward::Dr);
        assert_eq!(svc.persistence, Some(Duration::from_secs(50)));
        assert_eq!(svc.protocol, Protocol::Tcp);
        assert_eq!(svc.master_of, None, "keepalived installs services on every node");
        let rs: Vec<(SocketAddr, u32)> = svc.real_servers.iter().map(|r| (r.address, r.weight)).collect();
        assert_eq!(rs, [(sa("192.0.2.130:80"), 1), (sa("192.0.2.131:80"), 1)]);
        for r in &svc.real_servers {
            let c = &cfg.checks[r.check.as_ref().unwrap()];
            assert_eq!(c.kind, CheckKind::Tcp);
            assert_eq!(c.target.as_deref(), Some(r.address.to_string().as_str()));
            assert_eq!(c.interval, Duration::from_secs(6), "delay_loop");
            assert_eq!(c.timeout, Duration::from_secs(3), "connect_timeout");
            assert_eq!(c.retries, 3, "nb_get_retry");
            assert_eq!(c.retry_delay, Duration::from_secs(3));
            assert_eq!((c.rise, c.fall), (1, 1));
        }
        // keepalived 2.2 ignores nb_get_retry in TCP_CHECK: said, not hidden.
        assert!(has_warning(&imp, "nb_get_retry", WarningKind::Changed));
    }
}

#[test]
fn seed001_scripts_and_notify() {
    let (m, im) = import("seed001_master_script.conf");
    assert_eq!(m.scripts["httpd_check"].command, ["/scripts/check_h.sh"]);
    assert_eq!(m.scripts["httpd_check"].interval, Duration::from_secs(1));
    let t = &m.vrrp.instances["vi_1"].track_scripts;
    assert_eq!((t[0].name.as_str(), t[0].weight), ("httpd_check", -20));
    let (b, ib) = import("seed001_backup_notify.conf");
    assert_eq!(b.vrrp.instances["vi_1"].priority, 90);
    assert!(b.scripts.is_empty());
    // The notify scripts are carried over, split as keepalived splits them.
    for (cfg, imp) in [(&m, &im), (&b, &ib)] {
        let i = &cfg.vrrp.instances["vi_1"];
        assert_eq!(i.notify_master, ["/scripts/notify.sh", "master", "192.0.2.100"]);
        assert_eq!(i.notify_backup, ["/scripts/notify.sh", "backup", "192.0.2.100"]);
        assert!(
            !imp.warnings.iter().any(|w| w.keyword.starts_with("notify")),
            "{:?}",
            imp.warnings
        );
    }
    // Each carried key names its keepalived line.
    let line = line_of("seed001_backup_notify.conf", "notify_master");
    assert!(ib.toml.contains(&format!("line {line}")), "{}", ib.toml);
}

/// Imports `text`; the TOML must load through the ordinary loader.
fn import_text(text: &str) -> (Config, Import) {
    // A directory per call: tests run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let imp = import_str(text, "k.conf", Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch(&format!("text{n}"));
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let cfg = Config::from_files(&[&out])
        .unwrap_or_else(|e| panic!("emitted TOML does not load: {e}\n{}", imp.toml));
    std::fs::remove_dir_all(&dir).unwrap();
    (cfg, imp)
}

#[test]
fn notifications_mail_and_script_user_are_carried() {
    let text = "global_defs {\n  router_id lb01\n  notification_email {\n    admin@example.org\n    \
                ops@example.org\n  }\n  notification_email_from ka@example.org\n  smtp_server 192.0.2.25\n  \
                smtp_connect_timeout 30\n  smtp_helo_name lb01.example.org\n  script_user root\n  \
                enable_script_security\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  \
                priority 100\n  virtual_ipaddress {\n    192.0.2.100/24\n  }\n  \
                notify \"/bin/echo changed\" root\n  notify_fault /bin/true\n  notify_deleted /bin/true\n  \
                smtp_alert\n}\n";
    let (cfg, imp) = import_text(text);
    let smtp = cfg.notify.smtp.as_ref().expect("notify.smtp");
    assert_eq!(smtp.server, "192.0.2.25:25");
    assert_eq!(smtp.from, "ka@example.org");
    assert_eq!(smtp.to, ["admin@example.org", "ops@example.org"]);
    assert_eq!(
        smtp.tls,
        hafront::config::notify::SmtpTls::None,
        "keepalived mails in plain text"
    );
    assert_eq!(smtp.timeout, Duration::from_secs(30));
    assert_eq!(cfg.security.script_user.as_deref(), Some("root"));
    let i = &cfg.vrrp.instances["vi_1"];
    assert_eq!(i.notify, ["/bin/echo", "changed"]);
    assert_eq!(i.notify_fault, ["/bin/true"]);
    assert!(
        has_warning(&imp, "notify", WarningKind::Changed),
        "the user after the script"
    );
    assert!(has_warning(&imp, "notify_deleted", WarningKind::Dropped));
    assert!(
        has_warning(&imp, "smtp_alert", WarningKind::Changed),
        "mail is for every instance"
    );
    assert!(has_warning(&imp, "smtp_helo_name", WarningKind::Dropped));
    assert!(has_warning(&imp, "enable_script_security", WarningKind::Changed));

    // Without smtp_alert keepalived sends no mail: nothing is carried.
    let quiet = text.replace("  smtp_alert\n", "");
    let (cfg, imp) = import_text(&quiet);
    assert!(cfg.notify.smtp.is_none());
    assert!(has_warning(&imp, "smtp_server", WarningKind::Dropped));
    // Mail asked for, but no sender: not carried, and said so.
    let no_from = text.replace("  notification_email_from ka@example.org\n", "");
    let (cfg, imp) = import_text(&no_from);
    assert!(cfg.notify.smtp.is_none());
    assert!(imp.warnings.iter().any(|w| w.keyword == "smtp_alert"
        && w.kind == WarningKind::Dropped
        && w.why.contains("notification_email_from")));
    // A script user this machine lacks would make the configuration fail to load.
    let nobody = text.replace("script_user root", "script_user hafront-no-such-user");
    let (cfg, imp) = import_text(&nobody);
    assert_eq!(cfg.security.script_user, None);
    assert!(has_warning(&imp, "script_user", WarningKind::Dropped));
    // A relative notify script that is not in PATH is an error naming the line.
    let e = err(&text.replace("notify_fault /bin/true", "notify_fault no-such-notify-script.sh"));
    assert_eq!(e.loc.line, 22, "{e}");
    assert!(e.to_string().contains("not an absolute path"), "{e}");
}

#[test]
fn seed002_reference_with_prose_lines() {
    let name = "seed002_reference.conf";
    let (cfg, imp) = import(name);
    assert_eq!(cfg.node.name, "LVS_DEVEL");
    let i = &cfg.vrrp.instances["vi_1"];
    assert_eq!((i.interface.as_str(), i.vrid, i.priority), ("eth0", 51, 100));
    assert_eq!(vips(&cfg, "vi_1"), ["203.0.113.1/32"]);
    // vrrp_strict: no accept, no authentication (as keepalived does in strict mode).
    assert!(!i.accept);
    assert!(i.auth_pass.is_none());
    assert!(has_warning(&imp, "authentication", WarningKind::Dropped));
    // vrrp_script without a script: removed with its track_script, as keepalived does.
    assert!(cfg.scripts.is_empty() && i.track_scripts.is_empty());
    assert!(has_warning(&imp, "vrrp_script", WarningKind::Dropped));
    let svc = &cfg.ipvs.services["vs_203_0_113_1_80"];
    assert_eq!(svc.forwarding, Forward::Nat);
    assert_eq!(svc.sorry_server, Some(sa("203.0.113.14:80")));
    assert_eq!(svc.persistence, Some(Duration::from_secs(50)));
    // The duplicated real server is dropped, as keepalived does.
    assert_eq!(svc.real_servers.len(), 1);
    assert_eq!(cfg.checks.len(), 1);
    let rs = &svc.real_servers[0];
    assert_eq!(rs.address, sa("203.0.113.12:80"));
    let c = &cfg.checks[rs.check.as_ref().unwrap()];
    assert_eq!(c.kind, CheckKind::Http);
    assert_eq!(c.url.as_deref(), Some("http://203.0.113.12:80/testurl/test.jsp"));
    assert_eq!(c.expect_status.len(), 1);
    assert!(c.expect_status[0].contains(200) && !c.expect_status[0].contains(201));
    assert_eq!(
        c.expect_digest.as_deref(),
        Some("md5:640205b7b0fc66c1ea91c463fac6334d")
    );
    assert_eq!((c.timeout, c.retries), (Duration::from_secs(3), 3));
    // The second checker of that real server (TCP_CHECK) is reported.
    let w = imp.warnings.iter().find(|w| w.keyword == "TCP_CHECK").unwrap();
    assert_eq!(w.loc.line, line_of(name, "TCP_CHECK {"));
    // Every prose line is reported with its line, none is taken as configuration.
    for prose in ["邮件头地址", "Chain", "DROP", "定义虚拟主机IP与端口"] {
        let w = imp
            .warnings
            .iter()
            .find(|w| w.keyword == prose)
            .unwrap_or_else(|| panic!("no warning for {prose}"));
        assert_eq!(w.loc.line, line_of(name, prose));
        assert_eq!(w.kind, WarningKind::Dropped);
        if !prose.is_ascii() {
            assert!(w.why.contains("not a keepalived keyword"), "{w}");
        }
    }
    let dup = imp.warnings.iter().find(|w| w.keyword == "real_server").unwrap();
    assert!(dup.why.contains("listed twice"), "{dup}");
}

#[test]
fn seed002_syncgroup_is_rejected_where_its_brace_is_lost() {
    // keepalived accepts this snippet and silently runs without VI_1: the
    // sync group's '}' is inside a comment, so the group swallows the instance.
    let name = "seed002_syncgroup.conf";
    let e = import_file(&data(name), Options::default()).unwrap_err();
    assert_eq!(e.loc.line, line_of(name, "vrrp_sync_group VG_1"));
    assert!(e.message.contains("never closed"), "{e}");
    assert!(e.message.contains("3 blocks"), "{e}");
}

#[test]
fn seed003_pairs() {
    let (m, _) = import("seed003_master.conf");
    let (b, _) = import("seed003_backup.conf");
    assert_eq!(m.node.name, "lb_01");
    for (cfg, prio) in [(&m, 150), (&b, 100)] {
        let i = &cfg.vrrp.instances["lb"];
        assert_eq!((i.interface.as_str(), i.vrid, i.priority), ("eth0", 125, prio));
        assert_eq!(i.auth_pass.as_ref().unwrap().expose(), "1234");
        assert_eq!(vips(cfg, "lb"), ["198.51.100.222/32"]);
    }
    let (a, ia) = import("seed003_lb01.conf");
    let (b, _) = import("seed003_lb02.conf");
    for (cfg, prio, node) in [(&a, 150, "lb01"), (&b, 100, "lb02")] {
        assert_eq!(cfg.node.name, node);
        let i = &cfg.vrrp.instances["vi_1"];
        assert_eq!((i.vrid, i.priority), (55, prio));
        assert_eq!(vips(cfg, "vi_1"), ["192.0.2.12/24"]);
        assert_eq!(
            i.vip_label.as_deref(),
            Some("eth0:1"),
            "label glued to a # comment"
        );
    }
    // The full-width '！' line is reported, not taken as a comment.
    let w = ia.warnings.iter().find(|w| w.keyword == "！").unwrap();
    assert_eq!(w.loc.line, line_of("seed003_lb01.conf", "！ Configuration"));
}

fn hafront() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hafront"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HAFRONT_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn check_config_accepts_every_seed_without_its_interfaces() {
    for name in SEEDS {
        let out = hafront()
            .args(["check-config", "--no-env", "--keepalived-config"])
            .arg(data(name))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        // The effective configuration is printed, the warnings go to stderr.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("[vrrp.instances."), "{name}: {stdout}");
        assert!(stderr.contains("hafront: warning: "), "{name}: {stderr}");
    }
    // The seeds' interfaces need not exist: one that cannot exist here.
    let dir = scratch("noif");
    let f = dir.join("k.conf");
    std::fs::write(
        &f,
        "vrrp_instance X {\n interface hfnope9\n virtual_router_id 9\n virtual_ipaddress {\n  192.0.2.9/24\n }\n}\n",
    )
    .unwrap();
    assert!(!Path::new("/sys/class/net/hfnope9").exists());
    let out = hafront()
        .args(["check-config", "--no-env", "--keepalived-config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_import_output_strict_and_errors() {
    let dir = scratch("cli");
    let out = dir.join("out.toml");
    let import_seed001 = || {
        hafront()
            .arg("import-keepalived")
            .arg(data("seed001_master_script.conf"))
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap()
    };
    let r = import_seed001();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    let cfg = Config::from_files(&[&out]).unwrap();
    assert_eq!(cfg.vrrp.instances["vi_1"].priority, 100);
    // Owner-only, whatever the umask: an import usually holds auth_pass
    // (this one does), and it replaces a world-readable file of that name.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(std::fs::read_to_string(&out).unwrap().contains("auth_pass"));
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o600);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = import_seed001();
    assert!(r.status.success());
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o600);
    assert_eq!(cfg.vrrp.instances["vi_1"].notify_master[0], "/scripts/notify.sh");
    // What is not carried over is said on stderr with its line.
    let r = hafront()
        .arg("import-keepalived")
        .arg(data("seed000_master.conf"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    let line = line_of("seed000_master.conf", "mcast_src_ip");
    assert!(
        stderr.contains(&format!(
            "seed000_master.conf:{line}: mcast_src_ip: not carried over"
        )),
        "{stderr}"
    );

    // --strict: a keyword not carried over is fatal (exit 2), named with its line.
    let r = hafront()
        .arg("import-keepalived")
        .arg("--strict")
        .arg(data("seed000_master.conf"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains(&format!(":{line}: mcast_src_ip")), "{stderr}");
    assert!(r.stdout.is_empty());

    // A syntax error: exit 2, file:line.
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "vrrp_instance A {\n  interface eth0\n").unwrap();
    let r = hafront().arg("import-keepalived").arg(&bad).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains(&format!("{}:1: ", bad.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keepalived_config_layers_under_files_and_env() {
    let dir = scratch("layers");
    let over = dir.join("node.toml");
    std::fs::write(&over, "[vrrp.instances.vi_1]\ninterface = \"eth9\"\n").unwrap();
    let r = hafront()
        .args(["check-config", "--keepalived-config"])
        .arg(data("seed001_master.conf"))
        .arg("-c")
        .arg(&over)
        .env("HAFRONT_VRRP__INSTANCES__VI_1__PRIORITY", "42")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let printed: toml::Table = String::from_utf8_lossy(&r.stdout).parse().unwrap();
    let inst = &printed["vrrp"]["instances"]["vi_1"];
    assert_eq!(inst["priority"].as_integer(), Some(42), "env on top");
    assert_eq!(
        inst["interface"].as_str(),
        Some("eth9"),
        "-c file over the import"
    );
    assert_eq!(
        inst["vrid"].as_integer(),
        Some(51),
        "the rest from keepalived.conf"
    );
    // An invalid value from the env names its source; the import names its file.
    let r = hafront()
        .args(["check-config", "--keepalived-config"])
        .arg(data("seed001_master.conf"))
        .env("HAFRONT_VRRP__INSTANCES__VI_1__VERSION", "3")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("auth_pass"), "{stderr}");
    assert!(stderr.contains("imported from keepalived"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- malformed input: a located error, never a panic ----------------------------

fn err(text: &str) -> ImportError {
    match import_str(text, "k.conf", Options::default()) {
        Ok(i) => panic!("expected an error, got:\n{}", i.toml),
        Err(e) => e,
    }
}

const GOOD: &str = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";

#[test]
fn good_minimal_input() {
    let imp = import_str(GOOD, "k.conf", Options { strict: true }).unwrap();
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    assert!(imp.toml.contains("[vrrp.instances.vi_1]"));
}

#[test]
fn unbalanced_braces() {
    let e = err(&GOOD.replace("  }\n}\n", "  }\n"));
    assert_eq!(
        (e.loc.to_string(), e.message.contains("never closed")),
        ("k.conf:1".into(), true),
        "{e}"
    );
    let e = err(&format!("{GOOD}}}\n"));
    assert_eq!(e.loc.line, 9);
    assert!(e.message.contains("without a block"), "{e}");
}

#[test]
fn unknown_block() {
    // keepalived skips 'vrrp_instanse' and starts without the VIP.
    let e = err(&GOOD.replace("vrrp_instance", "vrrp_instanse"));
    assert_eq!(e.loc.line, 1);
    assert!(e.message.contains("unknown block 'vrrp_instanse VI_1'"), "{e}");
    let e = err(&GOOD.replace("  priority 100\n", "  priority 100\n  tracks {\n    x\n  }\n"));
    assert_eq!(e.loc.line, 5);
    assert!(
        e.message.contains("unknown block 'tracks' in vrrp_instance"),
        "{e}"
    );
}

#[test]
fn bad_ip() {
    let e = err(&GOOD.replace("192.0.2.100/24", "192.0.2.300/24"));
    assert_eq!(e.loc.line, 6);
    assert!(
        e.message.contains("\"192.0.2.300/24\" is not an IP address"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "  priority 100\n",
        "  priority 100\n  unicast_peer {\n    192.0.2.x\n  }\n",
    ));
    assert_eq!(e.loc.line, 6);
    let e = err("virtual_server 192.0.2.1 http {\n}\n");
    assert!(e.message.contains("not a port"), "{e}");
}

#[test]
fn out_of_range_priority() {
    for bad in ["256", "0", "-1", "high"] {
        let e = err(&GOOD.replace("priority 100", &format!("priority {bad}")));
        assert_eq!(e.loc.line, 4, "{bad}");
        assert!(e.message.contains("1..255"), "{e}");
    }
    let e = err(&GOOD.replace("virtual_router_id 51", "virtual_router_id 300"));
    assert_eq!(e.loc.line, 3);
}

#[test]
fn other_rejections() {
    let e = err(&GOOD.replace("  interface eth0\n", ""));
    assert!(e.message.contains("'interface' is required"), "{e}");
    let e = err(&GOOD.replace("192.0.2.100/24", "192.0.2.100/24 dev eth1/x"));
    assert!(e.message.contains("not an interface name"), "{e}");
    let e = err("virtual_server 192.0.2.1 80 {\n lb_algo fastest\n}\n");
    assert_eq!(e.loc.line, 2);
    let e = err("vrrp_script s {\n script \"/bin/true\n}\n");
    assert!(e.message.contains("unterminated"), "{e}");
    let e = err("include other.conf\n");
    assert!(e.message.contains("include"), "{e}");
}

#[test]
fn includes() {
    let dir = scratch("include");
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(
        dir.join("keepalived.conf"),
        "global_defs {\n  router_id inc\n}\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/a.conf"), GOOD).unwrap();
    std::fs::write(
        dir.join("conf.d/b.conf"),
        GOOD.replace("VI_1", "VI_2")
            .replace("51", "52")
            .replace(".100", ".101"),
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/b.conf.bak"), "garbage {\n").unwrap();
    let imp = import_file(&dir.join("keepalived.conf"), Options::default()).unwrap();
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let cfg = Config::from_files(&[&out]).unwrap();
    assert_eq!(cfg.node.name, "inc");
    assert_eq!(cfg.vrrp.instances["vi_1"].vrid, 51);
    assert_eq!(cfg.vrrp.instances["vi_2"].vrid, 52);
    // Items name the included file they come from.
    assert!(imp.toml.contains(&format!(
        "{}:1 vrrp_instance VI_2",
        dir.join("conf.d/b.conf").display()
    )));

    // A missing include is an error at the include line.
    std::fs::write(
        dir.join("keepalived.conf"),
        "global_defs {\n}\ninclude /nonexistent/hafront/*.conf\n",
    )
    .unwrap();
    let e = import_file(&dir.join("keepalived.conf"), Options::default()).unwrap_err();
    assert_eq!(e.loc.line, 3);
    assert!(e.message.contains("no file matches"), "{e}");
    // An include cycle ends with an error, not a stack overflow.
    std::fs::write(dir.join("keepalived.conf"), "include keepalived.conf\n").unwrap();
    let e = import_file(&dir.join("keepalived.conf"), Options::default()).unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checks_of_every_kind() {
    let text = r#"
virtual_server 192.0.2.100 443 {
  delay_loop 3
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  quorum 2
  real_server 192.0.2.11 443 {
    weight 2
    inhibit_on_failure
    SSL_GET {
      url {
        path /health
        status_code 200-299 302
      }
      connect_timeout 2
      retry 2
    }
  }
  real_server 192.0.2.12 443 {
    MISC_CHECK {
      misc_path "/bin/sh -c 'exit 0'"
      misc_timeout 4
      misc_dynamic
    }
  }
  real_server 192.0.2.13 443 {
    DNS_CHECK {
      type AAAA
      name example.org
    }
  }
  real_server 192.0.2.14 25 {
    SMTP_CHECK {
      helo_name me.example
      connect_port 2525
    }
  }
  real_server 192.0.2.15 443 {
    PING_CHECK {
    }
  }
}
"#;
    let imp = import_str(text, "k.conf", Options::default()).unwrap();
    let dir = scratch("kinds");
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let cfg = Config::from_files(&[&out]).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    std::fs::remove_dir_all(&dir).unwrap();
    let svc = &cfg.ipvs.services["vs_192_0_2_100_443"];
    assert_eq!(
        (svc.scheduler.as_str(), svc.quorum, svc.inhibit_on_failure),
        ("wrr", 2, true)
    );
    let check = |n: usize| &cfg.checks[svc.real_servers[n].check.as_ref().unwrap()];
    let ssl = check(0);
    assert_eq!(ssl.kind, CheckKind::Https);
    assert_eq!(ssl.url.as_deref(), Some("https://192.0.2.11:443/health"));
    assert!(!ssl.tls_verify);
    assert_eq!(ssl.expect_status.len(), 2);
    assert_eq!(
        (ssl.timeout, ssl.retries, ssl.interval),
        (Duration::from_secs(2), 2, Duration::from_secs(3))
    );
    assert!(has_warning(&imp, "SSL_GET", WarningKind::Changed));
    let misc = check(1);
    assert_eq!(misc.command, ["/bin/sh", "-c", "exit 0"]);
    assert_eq!(
        (misc.timeout, misc.dynamic_weight, misc.retries),
        (Duration::from_secs(4), true, 0)
    );
    let dns = check(2);
    assert_eq!(dns.server.as_deref(), Some("192.0.2.13:53"));
    assert_eq!(
        (dns.query_type.as_deref(), dns.query_name.as_deref()),
        (Some("AAAA"), Some("example.org"))
    );
    let smtp = check(3);
    assert_eq!(smtp.target.as_deref(), Some("192.0.2.14:2525"));
    assert_eq!(smtp.helo_name.as_deref(), Some("me.example"));
    let ping = check(4);
    assert_eq!(ping.target.as_deref(), Some("192.0.2.15"));
    // keepalived defaults where hafront's differ.
    assert_eq!(ping.interval, Duration::from_secs(3));
    assert_eq!((ping.timeout, ping.retries), (Duration::from_secs(5), 1));
    assert_eq!(svc.real_servers[1].weight, 1);
}

#[test]
fn vrrp_features() {
    let text = r#"
global_defs {
  vrrp_version 3
  vrrp_garp_master_delay 2
}
vrrp_script chk {
  script "/bin/true"
  weight 10
  rise 2
  fall 3
}
vrrp_track_file tf {
  file /run/prio
  weight -5
}
vrrp_instance Web.Front {
  interface eth0
  virtual_router_id 7
  priority 200
  advert_int 0.1
  nopreempt
  preempt_delay 30
  unicast_src_ip 192.0.2.1
  unicast_peer {
    192.0.2.2
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_script {
    chk weight -30
  }
  track_interface {
    eth1 weight -50
    eth2
  }
  track_file {
    tf
  }
  garp_master_repeat 3
}
vrrp_instance db {
  interface eth0
  virtual_router_id 8
  virtual_ipaddress {
    192.0.2.101
  }
}
vrrp_sync_group G1 {
  group {
    Web.Front
    db
  }
}
"#;
    let imp = import_str(text, "k.conf", Options { strict: true }).unwrap();
    let dir = scratch("vrrp");
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let cfg = Config::from_files(&[&out]).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    std::fs::remove_dir_all(&dir).unwrap();
    let i = &cfg.vrrp.instances["web_front"];
    assert!(
        imp.toml.contains("vrrp_instance Web.Front -> web_front"),
        "{}",
        imp.toml
    );
    assert_eq!(i.version, hafront::vrrp::Version::V3);
    assert_eq!(i.advert_interval, Duration::from_millis(100));
    assert!(!i.preempt);
    // keepalived clears preempt_delay under nopreempt (vrrp.c).
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(i.unicast_source, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(
        i.unicast_peers,
        ["192.0.2.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(vips(&cfg, "web_front"), ["192.0.2.100/24"]);
    assert_eq!(
        (i.track_scripts[0].name.as_str(), i.track_scripts[0].weight),
        ("chk", -30)
    );
    let ti: Vec<(&str, i32)> = i
        .track_interfaces
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(ti, [("eth1", -50), ("eth2", 0)]);
    assert_eq!(
        (i.track_files[0].name.as_str(), i.track_files[0].weight),
        ("tf", -5)
    );
    assert_eq!(cfg.files["tf"].path, Path::new("/run/prio"));
    assert_eq!((cfg.scripts["chk"].rise, cfg.scripts["chk"].fall), (2, 3));
    assert_eq!(i.garp.master_delay, Duration::from_secs(2));
    assert_eq!((i.garp.master_burst, i.garp.master_repeat), (3, 3));
    assert_eq!(cfg.vrrp.instances["db"].garp.master_delay, Duration::from_secs(2));
    assert_eq!(cfg.vrrp.sync_groups["g1"].instances, ["web_front", "db"]);
}

/// Deterministic mutations of the seed configurations (the same idea as the cargo
/// fuzz target in fuzz/, which needs nightly): whatever the input, the import
/// returns, and what it returns is valid TOML.
#[test]
fn mutated_inputs_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "{",
        "}",
        "\"",
        "#",
        "!",
        " ",
        "\n",
        "0",
        "-1",
        "256",
        "::",
        "/",
        "include",
        "vrrp_instance X {",
        "virtual_ipaddress {",
        "real_server 1.2.3.4 80 {",
        "HTTP_GET {",
        "url {",
        "weight",
        "priority",
        "advert_int",
        "999999999999999999999",
        "0.0001",
        "é",
        "\u{ff01}",
        "track_script {",
        "group {",
    ];
    let mut inputs: Vec<String> = SEEDS
        .iter()
        .map(|n| std::fs::read_to_string(data(n)).unwrap())
        .collect();
    inputs.push(GOOD.to_string());
    let (mut ok, mut failed) = (0, 0);
    for round in 0..4000 {
        let base = &inputs[round % inputs.len()];
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..(1 + rnd() % 8) {
            let at = (rnd() as usize) % (chars.len() + 1);
            match rnd() % 3 {
                0 if at < chars.len() => {
                    let len = (rnd() as usize % 20).min(chars.len() - at);
                    chars.drain(at..at + len);
                }
                1 => {
                    let p = pieces[rnd() as usize % pieces.len()];
                    chars.splice(at..at, p.chars());
                }
                _ if at < chars.len() => {
                    chars[at] = pieces[rnd() as usize % pieces.len()].chars().next().unwrap()
                }
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        match import_str(&text, "fuzz.conf", Options::default()) {
            Ok(imp) => {
                ok += 1;
                if let Err(e) = imp.toml.parse::<toml::Table>() {
                    panic!(
                        "round {round}: invalid TOML ({e}) from:\n{text}\n---\n{}",
                        imp.toml
                    );
                }
            }
            Err(e) => {
                failed += 1;
                assert!(e.loc.line >= 1, "round {round}: unlocated error {e}");
            }
        }
    }
    // Both outcomes are exercised.
    assert!(ok > 100 && failed > 100, "ok {ok}, failed {failed}");
}

/// keepalived's `no_track` on a VIP becomes `vip_no_track` (issue 14, VIP drift).
#[test]
fn no_track_vips_are_carried() {
    let (cfg, _imp) = import_text(
        "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n    192.0.2.101/24 no_track\n  }\n}\n",
    );
    let web = &cfg.vrrp.instances["web"];
    assert_eq!(web.virtual_ips.len(), 2);
    assert_eq!(
        web.vip_no_track,
        vec!["192.0.2.101/24".parse::<ipnet::IpNet>().unwrap()]
    );
}

/// keepalived's start-up delay, real-time priority and no-swap carry over (issue 14).
#[test]
fn startup_delay_rt_priority_and_no_swap_are_carried() {
    let (cfg, _imp) = import_text(
        "global_defs {\n  vrrp_startup_delay 5\n  vrrp_rt_priority 20\n  vrrp_no_swap\n}\n\
         vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n",
    );
    assert_eq!(cfg.vrrp.startup_delay, std::time::Duration::from_secs(5));
    assert_eq!(cfg.vrrp.rt_priority, 20);
    assert!(cfg.vrrp.lock_memory);
    assert_eq!(cfg.vrrp.instances.len(), 1);
}

/// `disable_local_igmp` carries over (it was "not supported"); without it the key
/// stays unset (hafront decides: on with an IPv4 use_vmac instance).
#[test]
fn disable_local_igmp_is_carried() {
    let inst = "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
                virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";
    let (cfg, _imp) = import_text(&format!("global_defs {{\n  disable_local_igmp\n}}\n{inst}"));
    assert_eq!(cfg.vrrp.disable_local_igmp, Some(true));
    let (cfg, _imp) = import_text(inst);
    assert_eq!(cfg.vrrp.disable_local_igmp, None);
}

/// keepalived 2.4's auth_hmac block carries over key by key (issue 20 §1), and the
/// legacy authentication beside it is dropped, as keepalived drops it.
#[test]
fn auth_hmac_is_carried_over() {
    let text = "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  version 2\n  advert_int 2\n\
                authentication {\n    auth_type PASS\n    auth_pass secret12\n  }\n\
                auth_hmac {\n    key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
                \x20   key 2 file:/run/credentials/keepalived.service/vrrp\n    active_key 2\n\
                \x20   anti_replay monotonic\n    mode permissive\n  }\n\
                virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";
    let (cfg, imp) = import_text(text);
    let i = &cfg.vrrp.instances["web"];
    let h = i.auth_hmac.as_ref().expect("auth_hmac carried over");
    assert_eq!(h.keys.len(), 2);
    assert_eq!((h.keys[0].id, h.keys[1].id), (1, 2));
    assert_eq!(
        h.keys[1].key.expose(),
        "file:/run/credentials/keepalived.service/vrrp"
    );
    assert_eq!(h.active_key, 2);
    assert_eq!(h.mode, hafront::vrrp::auth_hmac::Mode::Permissive);
    assert_eq!(h.anti_replay, hafront::vrrp::auth_hmac::AntiReplay::Monotonic);
    assert!(i.auth_pass.is_none());
    assert!(has_warning(&imp, "authentication", WarningKind::Dropped));
    assert!(!imp
        .toml
        .contains("not carried over: hafront has no equivalent in vrrp_instance"));
}

#[test]
fn lvs_sync_daemon_is_carried() {
    let text =
        "global_defs {\n  lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8850 ttl 2 group 239.1.2.3\n}\n\
                vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
                virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";
    let (cfg, _) = import_text(text);
    let s = cfg.ipvs.sync.expect("ipvs.sync");
    assert_eq!(s.interface, "eth1");
    assert_eq!(s.instance.as_deref(), Some("vi_1"));
    assert_eq!(
        (s.sync_id, s.max_len, s.port, s.ttl),
        (7, Some(1400), Some(8850), Some(2))
    );
    assert_eq!(s.group, Some("239.1.2.3".parse().unwrap()));
    // Without an instance: both daemons always, as keepalived 2.x.
    let (cfg, _) = import_text(&text.replace(
        "eth1 VI_1 id 7 maxlen 1400 port 8850 ttl 2 group 239.1.2.3",
        "eth1",
    ));
    let s = cfg.ipvs.sync.expect("ipvs.sync");
    assert_eq!((s.interface.as_str(), s.instance, s.sync_id), ("eth1", None, 0));
    // An unknown instance is an error naming the line.
    let err = import_str(
        &text.replace("eth1 VI_1", "eth1 VI_9"),
        "k.conf",
        Options::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("VI_9"), "{err}");
}

/// keepalived's `use_vmac [NAME]` and `vmac_xmit_base` carry over (issue 20); the
/// macvlan options hafront does not have are reported, and `vmac_xmit_base`
/// without `use_vmac` is dropped as keepalived ignores it.
#[test]
fn use_vmac_is_carried() {
    let (cfg, imp) = import_text(
        "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
         use_vmac vmac51 netlink_notify_msg\n  vmac_xmit_base\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n\
         vrrp_instance db {\n  interface eth0\n  virtual_router_id 52\n  use_vmac\n  \
         virtual_ipaddress {\n    192.0.2.101/24\n  }\n}\n\
         vrrp_instance plain {\n  interface eth0\n  virtual_router_id 53\n  vmac_xmit_base\n  \
         virtual_ipaddress {\n    192.0.2.102/24\n  }\n}\n",
    );
    let web = &cfg.vrrp.instances["web"];
    assert!(web.use_vmac && web.vmac_xmit_base);
    assert_eq!(web.vmac_ifname().as_deref(), Some("vmac51"));
    let db = &cfg.vrrp.instances["db"];
    assert!(db.use_vmac && !db.vmac_xmit_base);
    assert_eq!(db.vmac_ifname().as_deref(), Some("vrrp.52"));
    let plain = &cfg.vrrp.instances["plain"];
    assert!(!plain.use_vmac && !plain.vmac_xmit_base);
    assert!(has_warning(&imp, "vmac_xmit_base", WarningKind::Dropped));
    assert!(has_warning(&imp, "use_vmac", WarningKind::Dropped));
}

/// keepalived's `use_ipvlan [[name] NAME] [ADDRESS] [bridge|private|vepa] [group G]`
/// carries over (issue 20); `group` is dropped, and with `use_vmac` as well the
/// ipvlan wins as in keepalived.
#[test]
fn use_ipvlan_is_carried() {
    use hafront::config::IpvlanMode;
    let (cfg, imp) = import_text(
        "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  \
         use_ipvlan ipv51 192.0.2.11/24 private group 3\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n\
         vrrp_instance db {\n  interface eth0\n  virtual_router_id 52\n  use_ipvlan name bridge 192.0.2.12\n  \
         virtual_ipaddress {\n    192.0.2.101/24\n  }\n}\n\
         vrrp_instance v6 {\n  interface eth0\n  virtual_router_id 53\n  use_vmac\n  use_ipvlan vepa\n  \
         virtual_ipaddress {\n    2001:db8::53/64\n  }\n}\n",
    );
    let web = &cfg.vrrp.instances["web"];
    assert!(web.use_ipvlan && !web.use_vmac);
    assert_eq!(web.vmac_ifname().as_deref(), Some("ipv51"));
    assert_eq!(web.ipvlan_address, Some("192.0.2.11/24".parse().unwrap()));
    assert_eq!(web.ipvlan_mode, IpvlanMode::Private);
    assert!(
        has_warning(&imp, "use_ipvlan", WarningKind::Dropped),
        "group dropped"
    );
    // "name" names the interface even when it reads like a mode.
    let db = &cfg.vrrp.instances["db"];
    assert_eq!(db.vmac_ifname().as_deref(), Some("bridge"));
    assert_eq!(db.ipvlan_address, Some("192.0.2.12/32".parse().unwrap()));
    assert_eq!(db.ipvlan_mode, IpvlanMode::Bridge);
    let v6 = &cfg.vrrp.instances["v6"];
    assert!(v6.use_ipvlan && !v6.use_vmac && v6.ipvlan_address.is_none());
    assert_eq!(v6.ipvlan_mode, IpvlanMode::Vepa);
    assert!(has_warning(&imp, "use_vmac", WarningKind::Dropped));
}

/// An IPv4 `use_ipvlan` without an address: keepalived puts the instance in fault;
/// hafront's validation names the key.
#[test]
fn use_ipvlan_without_address_is_refused_for_ipv4() {
    let text = "vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  use_ipvlan\n  \
                virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";
    let imp = import_str(text, "k.conf", Options::default()).unwrap();
    let dir = scratch("ipvlan");
    let out = dir.join("out.toml");
    std::fs::write(&out, &imp.toml).unwrap();
    let err = Config::from_files(&[&out]).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("ipvlan_address"), "{err}");
}

/// keepalived names a VMAC or ipvlan without a name `{vmac_prefix}.{vrid}`, the
/// next free `{prefix}N.{vrid}` if another instance has it (IPv6: `{prefix}6` second);
/// the importer writes that name where it is not hafront's default.
#[test]
fn vmac_names_follow_keepalived() {
    let (cfg, imp) = import_text(
        "global_defs {\n  vmac_prefix vip\n}\n\
         vrrp_instance a {\n  interface eth0\n  virtual_router_id 51\n  use_vmac\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n\
         vrrp_instance b {\n  interface eth1\n  virtual_router_id 51\n  use_vmac\n  \
         virtual_ipaddress {\n    198.51.100.100/24\n  }\n}\n\
         vrrp_instance c {\n  interface eth0\n  virtual_router_id 51\n  use_vmac\n  \
         virtual_ipaddress {\n    2001:db8::51/64\n  }\n}\n\
         vrrp_instance d {\n  interface eth0\n  virtual_router_id 52\n  use_vmac vip.52\n  \
         virtual_ipaddress {\n    192.0.2.101/24\n  }\n}\n\
         vrrp_instance e {\n  interface eth1\n  virtual_router_id 52\n  use_ipvlan 198.51.100.7/24\n  \
         virtual_ipaddress {\n    198.51.100.101/24\n  }\n}\n",
    );
    let name = |i: &str| cfg.vrrp.instances[i].vmac_ifname().unwrap();
    assert_eq!(name("a"), "vip.51");
    assert_eq!(name("b"), "vip1.51");
    assert_eq!(name("c"), "vip6.51");
    assert_eq!(name("d"), "vip.52");
    assert_eq!(name("e"), "vip1.52", "vip.52 is d's");
    assert!(has_warning(&imp, "vmac_prefix", WarningKind::Changed));

    // Without vmac_prefix: an IPv6 instance gets vrrp.{vrid} when it is free, as
    // in keepalived; IPv4 ones keep hafront's default, written as is.
    let (cfg, imp) = import_text(
        "vrrp_instance c {\n  interface eth0\n  virtual_router_id 51\n  use_vmac\n  \
         virtual_ipaddress {\n    2001:db8::51/64\n  }\n}\n\
         vrrp_instance a {\n  interface eth0\n  virtual_router_id 52\n  use_vmac\n  \
         virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n",
    );
    assert_eq!(cfg.vrrp.instances["c"].vmac_name.as_deref(), Some("vrrp.51"));
    assert_eq!(cfg.vrrp.instances["a"].vmac_name, None);
    assert!(imp.toml.contains("keepalived's name for it"), "{}", imp.toml);
}

/// Issue 20 §3: per-VIP dev/label/scope, excluded VIPs, virtual routes and rules,
/// dont_track_primary are carried over as keepalived means them.
#[test]
fn vips_elsewhere_excluded_routes_and_rules_are_carried() {
    use hafront::config::routes::{RouteType, RuleAction, RuleFamily, Scope};
    let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  dont_track_primary\n  \
                virtual_ipaddress {\n    192.0.2.100/24 label eth0:web\n    192.0.2.101/24 label eth0:two\n    \
                198.51.100.18/24 dev eth2 label eth2:1 scope link\n    2001:db8::5/64 label eth0:v6\n  }\n  \
                virtual_ipaddress_excluded {\n    203.0.113.5/24 no_track\n    2001:db8:1::5/64 dev eth2\n  }\n  \
                virtual_routes {\n    default via 192.0.2.254 dev eth0 table 100\n    \
                src 192.0.2.100 to 198.51.100.0/25 dev eth2 table main metric 7 scope link protocol static\n    \
                blackhole 203.0.113.128/25 table 1000\n    unreachable 2001:db8:5::/48 table 100 no_track\n    \
                inet6 default via 2001:db8::1\n    198.51.100.128/25 via 192.0.2.254 onlink\n    \
                192.0.2.0/24 dev eth0 table wan\n  }\n  \
                virtual_rules {\n    from 192.0.2.100 table 100 priority 100\n    \
                iif eth2 fwmark 0x10/0xff lookup 1000 preference 101\n    \
                to 198.51.100.0/24 oif eth0 prohibit priority 102\n    from all table 100\n    \
                inet6 table 100\n    not from 192.0.2.0/24 table 100 priority 5\n  }\n}\n";
    let (cfg, imp) = import_text(text);
    let i = &cfg.vrrp.instances["vi_1"];
    assert!(!i.track_link, "dont_track_primary");
    // The other family's VIP is not advertised in keepalived either (OTHER_FAMILY).
    assert_eq!(
        vips(&cfg, "vi_1"),
        ["192.0.2.100/24", "192.0.2.101/24", "198.51.100.18/24"]
    );
    assert_eq!(i.vip_label.as_deref(), Some("eth0:web"));
    let opts = &i.vip_options;
    assert_eq!(opts["192.0.2.101/24"].label.as_deref(), Some("eth0:two"));
    let d = &opts["198.51.100.18/24"];
    assert_eq!(
        (d.dev.as_deref(), d.label.as_deref(), d.scope),
        (Some("eth2"), Some("eth2:1"), Some(Scope::Link))
    );
    assert!(!opts.contains_key("192.0.2.100/24"));
    let ex: Vec<String> = i.virtual_ips_excluded.iter().map(|v| v.to_string()).collect();
    assert_eq!(ex, ["203.0.113.5/24", "2001:db8:1::5/64"]);
    assert_eq!(opts["2001:db8:1::5/64"].dev.as_deref(), Some("eth2"));
    assert_eq!(
        i.vip_no_track.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        ["203.0.113.5/24"]
    );

    let r = &i.virtual_routes;
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(r[0].to.to_string(), "0.0.0.0/0");
    assert_eq!(
        (r[0].via, r[0].dev.as_deref(), r[0].table),
        (Some("192.0.2.254".parse().unwrap()), Some("eth0"), 100)
    );
    assert_eq!(r[1].to.to_string(), "198.51.100.0/25");
    assert_eq!(
        (r[1].src, r[1].table, r[1].metric, r[1].scope, r[1].proto.0),
        (
            Some("192.0.2.100".parse().unwrap()),
            254,
            Some(7),
            Some(Scope::Link),
            4
        )
    );
    assert_eq!((r[2].kind, r[2].table), (RouteType::Blackhole, 1000));
    assert_eq!(
        (r[3].kind, r[3].no_track, r[3].to.to_string().as_str()),
        (RouteType::Unreachable, true, "2001:db8:5::/48")
    );
    assert_eq!(r[4].to.to_string(), "::/0");
    assert_eq!(r[0].proto.0, 18, "keepalived's protocol by default");
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.keyword == "198.51.100.128/25" && w.why.contains("onlink")),
        "{:?}",
        imp.warnings
    );
    assert!(imp
        .warnings
        .iter()
        .any(|w| w.keyword == "192.0.2.0/24" && w.why.contains("table wan")));

    let u = &i.virtual_rules;
    assert_eq!(u.len(), 5, "{u:?}");
    assert_eq!(
        (u[0].from.map(|p| p.to_string()), u[0].table, u[0].priority),
        (Some("192.0.2.100/32".into()), Some(100), 100)
    );
    assert_eq!(
        (
            u[1].iif.as_deref(),
            u[1].fwmark,
            u[1].fwmask,
            u[1].table,
            u[1].priority
        ),
        (Some("eth2"), Some(16), Some(255), Some(1000), 101)
    );
    assert_eq!(
        (u[2].action, u[2].oif.as_deref(), u[2].table),
        (RuleAction::Prohibit, Some("eth0"), None)
    );
    // No priority: keepalived counts down from 16384, per family.
    assert_eq!((u[3].from, u[3].priority), (None, 16384));
    assert_eq!((u[4].family, u[4].priority), (Some(RuleFamily::Ipv6), 16384));
    assert!(imp
        .warnings
        .iter()
        .any(|w| w.keyword == "from" && w.kind == WarningKind::Changed && w.why.contains("16384")));
    assert!(imp
        .warnings
        .iter()
        .any(|w| w.keyword == "not" && w.why.contains("the whole rule")));
}

/// keepalived's spacing of announcements and its periodic gARPs on extra
/// interfaces carry over (issue 20): `vrrp_garp_interval` / `vrrp_gna_interval`
/// (decimal seconds, microseconds) to `vrrp.garp_interval` / `na_interval`;
/// `[vrrp_]garp_extra_if [all] N` and the deprecated `[vrrp_]vmac_garp_intvl` to
/// every instance's `garp.extra_if_interval` / `extra_if_all`, an instance's own
/// line winning over global_defs' (0 included: it turns the global one off).
#[test]
fn garp_spacing_and_extra_if_are_carried() {
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n  \
             virtual_ipaddress {{\n    192.0.2.{vrid}/24\n  }}\n{extra}}}\n"
        )
    };
    let text = format!(
        "global_defs {{\n  vrrp_garp_interval 0.0505\n  vrrp_gna_interval 0.000001\n  \
         vrrp_garp_extra_if all 120\n}}\n{}{}{}{}",
        inst("web", 51, ""),
        inst("db", 52, "  garp_extra_if 30\n"),
        inst("off", 53, "  garp_extra_if 0\n"),
        inst("old", 54, "  vmac_garp_intvl all 60\n"),
    );
    let (cfg, imp) = import_text(&text);
    assert_eq!(cfg.vrrp.garp_interval, Duration::from_micros(50_500));
    assert_eq!(cfg.vrrp.na_interval, Duration::from_micros(1));
    assert_eq!(extra_if(&cfg, "web"), (120, true), "global_defs' default");
    assert_eq!(
        extra_if(&cfg, "db"),
        (30, false),
        "the instance's own line wins, all too"
    );
    assert_eq!(extra_if(&cfg, "off"), (0, false), "0 turns the global one off");
    assert_eq!(extra_if(&cfg, "old"), (60, true));
    assert!(
        has_warning(&imp, "vmac_garp_intvl", WarningKind::Changed),
        "deprecated name"
    );
    assert!(!imp.warnings.iter().any(|w| w.keyword.contains("garp_interval")
        || w.keyword.contains("gna_interval")
        || w.keyword.contains("extra_if")));

    // 0 is keepalived's "no spacing" (it rejects the value and keeps its default):
    // nothing to carry, said so; more than hafront's 10 s is dropped, said so.
    let (cfg, imp) = import_text(&text.replace("vrrp_garp_interval 0.0505", "vrrp_garp_interval 0"));
    assert_eq!(cfg.vrrp.garp_interval, Duration::ZERO);
    assert!(has_warning(&imp, "vrrp_garp_interval", WarningKind::Changed));
    let (cfg, imp) = import_text(&text.replace("vrrp_gna_interval 0.000001", "vrrp_gna_interval 11"));
    assert_eq!(cfg.vrrp.na_interval, Duration::ZERO);
    assert!(has_warning(&imp, "vrrp_gna_interval", WarningKind::Dropped));
    // No interval: keepalived ignores the line, and the import says so.
    let (cfg, imp) = import_text(&text.replace("garp_extra_if 30", "garp_extra_if all"));
    assert_eq!(extra_if(&cfg, "db"), (120, true), "global_defs' default stays");
    assert!(has_warning(&imp, "garp_extra_if", WarningKind::Dropped));
    // keepalived's range: 0..86400 seconds.
    let e = err(&text.replace("garp_extra_if 30", "garp_extra_if 86401"));
    assert!(e.to_string().contains("garp_extra_if"), "{e}");
}

/// An imported instance's `garp.extra_if_interval` (seconds) and `extra_if_all`.
fn extra_if(cfg: &Config, n: &str) -> (u64, bool) {
    let i = &cfg.vrrp.instances[n].garp;
    (i.extra_if_interval.as_secs(), i.extra_if_all)
}

/// Issue 20: `use_vmac_addr`, `vmac_addr_prefix` (global_defs) and a VIP line's
/// `use_vmac` are carried over (a VIP's use_vmac where it is on the instance's
/// VMAC already is dropped, as keepalived reports it), the VIPs' VMACs get
/// keepalived's names, and `hafront check-config` accepts the file.
#[test]
fn use_vmac_addr_and_vmac_addr_prefix_are_carried() {
    let text = "global_defs {\n  vmac_prefix vm\n  vmac_addr_prefix va\n}\n\
                vrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  use_vmac\n  use_vmac_addr\n  \
                virtual_ipaddress {\n    192.0.2.100/24 use_vmac\n    198.51.100.10/24 dev eth1\n  }\n  \
                virtual_ipaddress_excluded {\n    2001:db8::10/64\n  }\n}\n\
                vrrp_instance db {\n  interface eth0\n  virtual_router_id 52\n  \
                virtual_ipaddress {\n    192.0.2.101/24\n    198.51.100.11/24 dev eth1 use_vmac\n  }\n}\n";
    let (cfg, imp) = import_text(text);
    assert_eq!(cfg.vrrp.vmac_addr_prefix.as_deref(), Some("va"));
    let web = &cfg.vrrp.instances["web"];
    assert!(web.vmac_addr && web.use_vmac);
    assert_eq!(web.vmac_name.as_deref(), Some("vm.51"));
    assert!(
        !web.vip_options.contains_key("192.0.2.100/24"),
        "{:?}",
        web.vip_options
    );
    let db = &cfg.vrrp.instances["db"];
    assert!(!db.vmac_addr);
    assert!(db.vip_options["198.51.100.11/24"].use_vmac);
    assert_eq!(db.vip_options["198.51.100.11/24"].dev.as_deref(), Some("eth1"));
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.why.contains("use_vmac: not carried over")),
        "{:?}",
        imp.warnings
    );
    assert!(
        !imp.warnings.iter().any(|w| w.why.contains("issue 20")),
        "{:?}",
        imp.warnings
    );
    let plan = hafront::config::vmac::plan(&cfg.vrrp);
    let names = |i: &str| -> Vec<(String, String)> {
        plan[i].iter().map(|m| (m.name.clone(), m.base.clone())).collect()
    };
    assert_eq!(names("db"), [("va.52".to_string(), "eth1".to_string())]);
    assert_eq!(
        names("web"),
        [
            ("va.51".to_string(), "eth1".to_string()),
            ("va6.51".to_string(), "eth0".to_string())
        ]
    );

    // vmac_prefix stands in for vmac_addr_prefix where a VIP uses a VMAC...
    let (cfg, _) = import_text(
        "global_defs {\n  vmac_prefix vm\n}\nvrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  \
         use_vmac_addr\n  virtual_ipaddress {\n    192.0.2.100/24\n    198.51.100.10/24 dev eth1\n  }\n}\n",
    );
    assert_eq!(cfg.vrrp.vmac_addr_prefix.as_deref(), Some("vm"));
    // ... and is not written where none does.
    let (cfg, _) = import_text(
        "global_defs {\n  vmac_prefix vm\n}\nvrrp_instance web {\n  interface eth0\n  virtual_router_id 51\n  \
         use_vmac\n  virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n",
    );
    assert_eq!(cfg.vrrp.vmac_addr_prefix, None);

    let dir = scratch("vmacaddr");
    let f = dir.join("k.conf");
    std::fs::write(&f, text).unwrap();
    let out = hafront()
        .args(["check-config", "--no-env", "--keepalived-config"])
        .arg(&f)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("vmac_addr = true"), "{stdout}");
    assert!(stdout.contains("vmac_addr_prefix = \"va\""), "{stdout}");
}
