//! The configuration loader (figment layers, schema, validation) on arbitrary
//! text: TOML, then after a line `# env` up to 8 `KEY=VALUE` lines set as
//! `HAFRONT_*` environment variables (the prefix is added when missing) for the
//! one run. The TOML goes in as a named layer, so nothing is read from disk;
//! the loader's pure rules do not look at the machine.
//!
//! Checked: never a panic; an error names at least one problem, each with a
//! message; a configuration that loads prints (redacted) as valid TOML.
#![no_main]

use hafront::config::{self, Layer, Sources, ENV_PREFIX};
use libfuzzer_sys::fuzz_target;

const ENV_MARK: &str = "\n# env\n";
const MAX_VARS: usize = 8;

/// The variables of the `# env` section that can be set (no `=` or NUL in a name,
/// no NUL in a value: `set_var` refuses those, the kernel could not pass them).
fn env_vars(section: &str) -> Vec<(String, String)> {
    section
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| !k.is_empty() && !k.contains('\0') && !v.contains('\0'))
        .map(|(k, v)| {
            let k = if k.starts_with(ENV_PREFIX) {
                k.to_string()
            } else {
                format!("{ENV_PREFIX}{k}")
            };
            (k, v.to_string())
        })
        .take(MAX_VARS)
        .collect()
}

fuzz_target!(|text: &str| {
    let (toml, vars) = match text.split_once(ENV_MARK) {
        Some((toml, env)) => (toml, env_vars(env)),
        None => (text, Vec::new()),
    };
    // libFuzzer runs one input at a time on one thread; the variables are removed
    // before the next.
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    let result = config::load(&Sources {
        layers: vec![Layer {
            name: "fuzz.toml".into(),
            toml: toml.to_string(),
        }],
        files: vec![],
        env: !vars.is_empty(),
    });
    for (k, _) in &vars {
        std::env::remove_var(k);
    }
    match result {
        Ok(cfg) => {
            let printed = cfg.to_redacted_toml();
            if let Err(e) = printed.parse::<toml::Table>() {
                panic!("printed configuration is not TOML ({e}):\n{printed}");
            }
        }
        Err(e) => {
            let issues = e.issues();
            assert!(!issues.is_empty(), "an error without a problem: {e:?}");
            assert!(
                issues.iter().all(|i| !i.message.is_empty()),
                "a problem without a message: {e:?}"
            );
            let _ = e.to_string();
        }
    }
});
