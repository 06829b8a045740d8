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
