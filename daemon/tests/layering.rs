//! The direction of dependencies between the daemon's modules (docs/architecture.md,
//! "Layers"): a module may use only modules of a lower layer (or itself). A source
//! scan of `crate::NAME` paths (also inside `use crate::{..}` groups) and of
//! `super::` chains that climb out of a top module; comments are skipped.
//!
//! The protocol cores are crates of their own (crates/vrrp, crates/ipvs): they
//! cannot reach the daemon at all, and must not depend on tokio.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules of lower layers.
const LAYERS: &[&[&str]] = &[
    // The protocol cores' re-exports (vrrp also has its socket, io.rs), histograms,
    // the configuration man page (text only).
    &["vrrp", "histogram", "manpage"],
    // Schema and pure validation.
    &["config"],
    // The one writer of kept files (overrides, status, records use it).
    &["durable"],
    // Shared vocabulary, durable overrides, child processes, tracking rules, the
    // event bus (GET /v1/events) every layer above publishes to.
    &["shared", "overrides", "process", "track", "events"],
    // What touches the machine or the network, one concern each.
    &["net", "checks", "keepalived", "supervise", "ipvs"],
    // The machine's side of a configuration, and the loader that imports keepalived.
    &["notify", "preflight"],
    // Watchers that act on the network and notify: split brain, anycast.
    &["splitbrain", "anycast"],
    &["api"],
    // The runtime that wires everything together.
    &["daemon"],
];

/// Known violations, each with the step that removes it; a violation not listed
/// here fails, and so does an entry that no longer occurs (the list only shrinks).
const ALLOWED: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The module path of a source file below src/ (`config/checks.rs` ->
/// [config, checks]; `config/mod.rs` -> [config]; `lib.rs` -> []).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

/// The top modules a source file refers to through `crate::` or a `super::`
/// chain that leaves its own top module.
fn references(module: &[String], source: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inline modules (`mod tests {`) add a level for `super::`: the brace depth at
    // which each one opened.
    let mut inline: Vec<i64> = Vec::new();
    let mut depth: i64 = 0;
    // The text of a `crate::{` group not closed yet on its first line.
    let mut pending_group: Option<String> = None;
    for line in source.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        if pending_group.is_some() {
            group_text(code, &mut pending_group, &mut out);
            if pending_group.is_some() {
                continue;
            }
        }
        let t = code.trim();
        if (t.starts_with("mod ") || t.starts_with("pub mod ") || t.starts_with("pub(crate) mod "))
            && t.ends_with('{')
        {
            inline.push(depth);
        }
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
        while inline.last().is_some_and(|&d| depth <= d) {
            inline.pop();
        }
        let levels = module.len() + inline.len();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // use crate::{a::b, c}; or a group over several lines (rustfmt's
                // layout for long ones): collected up to its closing brace.
                pending_group = Some(String::new());
                group_text(group, &mut pending_group, &mut out);
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            rest = after;
        }
        // `super::` from a module at depth d reaches the crate root after d steps.
        let mut rest = code;
        while let Some(i) = rest.find("super::") {
            let mut after = &rest[i..];
            let mut n = 0;
            while let Some(a) = after.strip_prefix("super::") {
                n += 1;
                after = a;
            }
            if n >= levels {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            rest = after;
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Adds `text` to an open `crate::{` group; at its closing brace, the first name of
/// each top-level item goes to `out` and the group is closed.
fn group_text(text: &str, group: &mut Option<String>, out: &mut Vec<String>) {
    let Some(acc) = group.as_mut() else { return };
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            '}' => {
                acc.push_str(&text[..i]);
                let mut level = 0;
                let mut items = vec![String::new()];
                for c in acc.chars() {
                    match c {
                        '{' => level += 1,
                        '}' => level -= 1,
                        ',' if level == 0 => {
                            items.push(String::new());
                            continue;
                        }
                        _ => {}
                    }
                    items.last_mut().expect("one item").push(c);
                }
                for item in items {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != "self" {
                        out.push(name);
                    }
                }
                *group = None;
                return;
            }
            _ => {}
        }
    }
    acc.push_str(text);
    acc.push('\n');
}

/// (from module, to module) pairs that go against the layers.
fn violations(module: &[String], source: &str) -> Vec<(String, String)> {
    let Some(top) = module.first() else {
        return Vec::new(); // lib.rs, main.rs: the crate root wires everything
    };
    let from = layer(top).unwrap_or_else(|| panic!("module {top} is in no layer: add it to LAYERS"));
    references(module, source)
        .into_iter()
        .filter(|to| to != top)
        .filter(|to| match layer(to) {
            Some(l) => l >= from,
            None => false, // not a module of ours (e.g. a local `crate::` macro path)
        })
        .map(|to| (top.clone(), to))
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(f).unwrap();
        for v in violations(&module_path(rel), &text) {
            found.entry(v).or_default().push(rel.display().to_string());
        }
    }
    let mut bad = Vec::new();
    for ((from, to), files) in &found {
        if !ALLOWED.contains(&(from.as_str(), to.as_str())) {
            bad.push(format!("{from} -> {to} (in {})", files.join(", ")));
        }
    }
    for (from, to) in ALLOWED {
        if !found.contains_key(&(from.to_string(), to.to_string())) {
            bad.push(format!(
                "{from} -> {to} is allowed but no longer used: remove it from ALLOWED"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the layering:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn the_scan_catches_violations() {
    let m = |p: &str| module_path(Path::new(p));
    // Every form a violation can take is caught...
    let cases = [
        ("config/validate.rs", "use crate::checks::spec::CheckSpec;"),
        (
            "config/notify.rs",
            "    if crate::notify::smtp::split_server(s).is_err() {",
        ),
        ("config/mod.rs", "use crate::{keepalived, vrrp::Version};"),
        (
            "config/mod.rs",
            "use crate::{\n    vrrp::{Params, State},\n    checks::spec::CheckSpec,\n};",
        ),
        ("config/checks.rs", "use super::super::daemon::engine::Control;"),
        ("config/mod.rs", "use super::api::Api;"),
        (
            "config/checks.rs",
            "mod tests {\n    use super::super::super::checks::Checker;\n}",
        ),
        ("shared.rs", "pub use crate::daemon::engine::EngineSnapshot;"),
        ("api/status.rs", "use crate::daemon::engine::InstanceStatus;"),
        ("splitbrain/mod.rs", "use crate::daemon::engine::EngineSnapshot;"),
    ];
    for (file, line) in cases {
        assert!(
            !violations(&m(file), line).is_empty(),
            "{file}: {line} not caught"
        );
    }
    // ... and what goes downwards, stays inside a module, or is a comment is not.
    let fine = [
        ("daemon/engine.rs", "use crate::config::Config;"),
        ("config/checks.rs", "use super::validate::Problem;"),
        (
            "keepalived/parser.rs",
            "mod tests {\n    use super::super::lexer::lex_str;\n}",
        ),
        (
            "config/checks.rs",
            "mod tests {\n    use super::super::notify::SmtpTls;\n}",
        ),
        (
            "config/checks.rs",
            "//! `crate::checks::spec`, so that validation and the checker agree.",
        ),
        ("api/mod.rs", "use crate::{shared::EngineSnapshot, config};"),
        (
            "api/mod.rs",
            "use crate::{\n    shared::{Control, EngineSnapshot},\n    config,\n};",
        ),
        // `api` is inside the nested group (shared::api), not a top module here.
        (
            "splitbrain/mod.rs",
            "use crate::{shared::{Control, api}, config};",
        ),
    ];
    for (file, line) in fine {
        assert_eq!(violations(&m(file), line), Vec::new(), "{file}: {line}");
    }
}

#[test]
fn protocol_cores_have_no_runtime() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["crates/vrrp", "crates/ipvs"] {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        for dep in ["tokio", "hafront =", "futures", "rtnetlink", "socket2"] {
            assert!(
                !manifest.lines().any(|l| l.trim_start().starts_with(dep)),
                "{krate} depends on {dep}"
            );
        }
    }
}

/// nixos/package.nix runs the cargo tests in Nix's build sandbox, where /bin/sh is
/// the only program at an absolute path (everything else is on PATH, from the
/// store): code and tests start any other program by name, not as /bin/<name>.
#[test]
fn no_program_started_at_an_absolute_path_but_bin_sh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["daemon/src", "daemon/tests", "crates"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "the scan found only {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for call in ["Command::new(\"", "std_command(\""] {
                let Some(at) = line.find(call) else { continue };
                let program = line[at + call.len()..].split('"').next().unwrap_or("");
                if program.starts_with('/') && program != "/bin/sh" {
                    bad.push(format!("{}:{}: {program}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "programs at an absolute path (not in Nix's sandbox):\n{}",
        bad.join("\n")
    );
}
