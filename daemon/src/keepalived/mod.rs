//! Import of keepalived configurations (`hafront import-keepalived`,
//! `--keepalived-config`): `lexer` (tokens, comments, includes) -> `parser`
//! (statement tree with lines) -> `convert` (hafront TOML sections and warnings) ->
//! `emit` (the TOML text). The text is the result: `run --keepalived-config` loads
//! exactly what `import-keepalived` prints, through the ordinary configuration
//! loader. Mapping and differences: docs/migration.md.

pub mod convert;
mod emit;
mod error;
pub mod lexer;
pub mod parser;

use std::path::Path;

pub use error::{ImportError, Loc, Warning, WarningKind};

/// The imported configuration and what was not carried over as it was.
#[derive(Clone, Debug)]
pub struct Import {
    /// hafront TOML, with the keepalived line of each item in comments.
    pub toml: String,
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Keywords that are not carried over are errors.
    pub strict: bool,
}

/// Imports `path` and the files it includes.
pub fn import_file(path: &Path, opts: Options) -> Result<Import, ImportError> {
    let lines = lexer::lex_file(path)?;
    finish(&path.display().to_string(), &lines, opts)
}

/// Imports `text` as the file `name` (no `include`): tests and fuzzing.
pub fn import_str(text: &str, name: &str, opts: Options) -> Result<Import, ImportError> {
    let lines = lexer::lex_str(text, name)?;
    finish(name, &lines, opts)
}

fn finish(source: &str, lines: &[lexer::Line], opts: Options) -> Result<Import, ImportError> {
    let tree = parser::parse(lines)?;
    let converted = convert::convert(&tree)?;
    if opts.strict {
        let dropped: Vec<&Warning> = converted
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Dropped)
            .collect();
        if let Some(first) = dropped.first() {
            let more = match dropped.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            return Err(ImportError::new(
                &first.loc,
                format!("{}: {} [--strict]{more}", first.keyword, first.why),
            ));
        }
    }
    let mut header = vec![
        format!("hafront configuration imported from the keepalived configuration {source}"),
        "(hafront import-keepalived). Each table and key names the keepalived line it comes from;".into(),
        "see docs/migration.md for the mapping and what behaves differently.".into(),
    ];
    if !converted.warnings.is_empty() {
        header.push(String::new());
        header.push("Not carried over, or carried over differently:".into());
        header.extend(converted.warnings.iter().map(|w| format!("  {w}")));
    }
    Ok(Import {
        toml: emit::emit(&header, &converted.sections),
        warnings: converted.warnings,
    })
}

/// `hafront import-keepalived FILE [-o OUT] [--strict]`: prints the warnings on
/// stderr, checks that the result is a valid hafront configuration, writes it.
/// Returns the exit code: 0, or 2 when the file cannot be imported.
pub fn import_command(file: &Path, output: Option<&Path>, strict: bool) -> u8 {
    let import = match import_file(file, Options { strict }) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("hafront: cannot import {}:\n{e}", file.display());
            return 2;
        }
    };
    for w in &import.warnings {
        eprintln!("hafront: warning: {w}");
    }
    // The result goes through the ordinary loader, as `run --keepalived-config`
    // would load it (without the environment).
    let check = crate::config::LoadOptions {
        files: Vec::new(),
        env: false,
        keepalived: Some(file.to_path_buf()),
        offline: false,
    };
    if let Err(e) = crate::config::load_with_warnings(&check) {
        eprintln!("hafront: the imported configuration is not valid for hafront:\n{e}");
        return 2;
    }
    let written = match output {
        Some(out) => std::fs::write(out, &import.toml).map_err(|e| format!("{}: {e}", out.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(import.toml.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => {
            eprintln!(
                "hafront: imported {} ({} warning{})",
                file.display(),
                import.warnings.len(),
                if import.warnings.len() == 1 { "" } else { "s" }
            );
            0
        }
        Err(e) => {
            eprintln!("hafront: cannot write the configuration: {e}");
            1
        }
    }
}
