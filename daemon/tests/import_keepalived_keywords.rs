//! keepalived.conf import covers keepalived's own keyword tables: every keyword
//! that keepalived 2.4.3's global, VRRP, checker, track file and BFD parsers
//! register (tests/data/keepalived/keywords-2.4.3.tsv, written by
//! scripts/keepalived-keywords from keepalived's source) is, in its block, either
//! carried over or reported with a specific reason; never "not a keepalived
//! keyword", and never an unknown block.

use std::path::Path;

use hafront::keepalived::{import_str, Options};

struct Keyword {
    block: Vec<String>,
    keyword: String,
    opens_block: bool,
}

fn keywords() -> Vec<Keyword> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keepalived/keywords-2.4.3.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{l}");
            Keyword {
                block: match f[0] {
                    "-" => Vec::new(),
                    b => b.split('/').map(str::to_string).collect(),
                },
                keyword: f[1].to_string(),
                opens_block: f[2] == "block",
            }
        })
        .collect()
}

const INSTANCE: &str =
    "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n";

/// `inner` inside the blocks `path`, each opened with what it needs to import.
fn nest(path: &[String], inner: &str) -> String {
    let Some((outer, rest)) = path.split_first() else {
        return inner.to_string();
    };
    let inner = nest(rest, inner);
    match outer.as_str() {
        "vrrp_instance" => format!("{INSTANCE}{inner}\n}}\n"),
        "vrrp_sync_group" => {
            format!("{INSTANCE}}}\nvrrp_sync_group G {{\n group {{\n  VI\n }}\n{inner}\n}}\n")
        }
        "vrrp_script" => format!("vrrp_script S {{\n script \"/bin/true\"\n{inner}\n}}\n"),
        "virtual_server" => format!("virtual_server 192.0.2.1 80 {{\n{inner}\n}}\n"),
        "real_server" => format!("real_server 192.0.2.2 80 {{\n{inner}\n}}\n"),
        "HTTP_GET" | "SSL_GET" => format!("{outer} {{\n url {{\n  path /\n }}\n{inner}\n}}\n"),
        "url" => format!("url {{\n path /\n{inner}\n}}\n"),
        "MISC_CHECK" => format!("MISC_CHECK {{\n misc_path /bin/true\n{inner}\n}}\n"),
        "vrrp_track_file" | "track_file" => format!("{outer} F {{\n file /run/f\n{inner}\n}}\n"),
        "global_defs" | "authentication" | "host" => format!("{outer} {{\n{inner}\n}}\n"),
        // Named blocks: vrrp_track_process, bfd_instance, garp_group...
        _ => format!("{outer} X {{\n{inner}\n}}\n"),
    }
}

#[test]
fn the_blocks_import_on_their_own() {
    let mut blocks: Vec<Vec<String>> = keywords().into_iter().map(|k| k.block).collect();
    blocks.dedup();
    for b in blocks {
        let text = nest(&b, "");
        if let Err(e) = import_str(&text, "k.conf", Options::default()) {
            // A block keepalived has and hafront refuses as a whole is reported
            // as such, with a reason.
            assert!(!e.message.contains("unknown block"), "{b:?}: {e}\n{text}");
        }
    }
}

#[test]
fn every_keepalived_keyword_is_carried_over_or_has_a_reason() {
    let mut bad = Vec::new();
    let all = keywords();
    assert!(all.len() > 500, "{} keywords", all.len());
    for k in &all {
        let line = if k.opens_block {
            format!("{} {{\n}}", k.keyword)
        } else {
            format!("{} 1", k.keyword)
        };
        let text = nest(&k.block, &line);
        match import_str(&text, "k.conf", Options::default()) {
            // An error on its value (a missing block, a bad address) means the
            // importer knows the keyword.
            Err(e) if e.message.contains("unknown block") || e.message.contains("not a keepalived") => {
                bad.push(format!("{}/{}: {e}", k.block.join("/"), k.keyword))
            }
            Err(_) => {}
            Ok(imp) => {
                for w in imp.warnings.iter().filter(|w| w.keyword == k.keyword) {
                    if w.why.contains("not a keepalived") {
                        bad.push(format!("{}/{}: {}", k.block.join("/"), k.keyword, w.why));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} keywords without a reason:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn a_word_keepalived_does_not_have_is_still_reported_as_such() {
    let text = format!("{INSTANCE} advert_intervall 1\n}}\n");
    let imp = import_str(&text, "k.conf", Options::default()).unwrap();
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.keyword == "advert_intervall" && w.why.contains("not a keepalived")),
        "{:?}",
        imp.warnings
    );
}

#[test]
fn the_migration_guide_lists_every_keyword_not_carried_over() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/migration.md")).unwrap();
    let section = &guide[guide.find("## Not carried over").expect("section")..];
    let missing: Vec<&str> = hafront::keepalived::convert::keywords::REASONS
        .iter()
        .flat_map(|(_, kws, _)| kws.iter().copied())
        .filter(|k| !section.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/migration.md's 'Not carried over': {missing:?}"
    );
}
