//! keepalived's configuration language, lexically: lines of whitespace-separated
//! words, `{` and `}` as tokens of their own (also when glued to a word, as in
//! `track_script{`), `"quoted strings"` as one word, and comments from `#` or `!`
//! outside quotes to the end of the line (keepalived 2.x strips them anywhere on a
//! line, so `label eth0:1#note` is `label eth0:1`). `include PATTERN` lines are
//! replaced by the lines of the files the glob pattern names, a relative pattern
//! being taken from the directory of the including file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ImportError, Loc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Open,
    Close,
}

/// The tokens of one non-empty line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub loc: Loc,
    pub toks: Vec<Tok>,
}

/// Nested includes deeper than this are an error (an include cycle ends here).
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads `path` and the files it includes.
pub fn lex_file(path: &Path) -> Result<Vec<Line>, ImportError> {
    let mut out = Vec::new();
    let name: Arc<str> = Arc::from(path.display().to_string());
    let text = read(
        path,
        &Loc {
            file: name.clone(),
            line: 0,
        },
    )?;
    lex_into(&text, name, Some(path), 0, &mut out)?;
    Ok(out)
}

/// Lexes `text` as the file `name`. `include` is an error: there is no directory to
/// take a relative pattern from, and in-memory input (tests, fuzzing) must not read
/// files.
pub fn lex_str(text: &str, name: &str) -> Result<Vec<Line>, ImportError> {
    let mut out = Vec::new();
    lex_into(text, Arc::from(name), None, 0, &mut out)?;
    Ok(out)
}

fn read(path: &Path, at: &Loc) -> Result<String, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if at.line == 0 {
            format!("cannot read {}: {e}", path.display())
        } else {
            format!("include: cannot read {}: {e}", path.display())
        };
        ImportError {
            loc: Loc {
                file: at.file.clone(),
                line: at.line.max(1),
            },
            message: what,
        }
    })?;
    // keepalived reads bytes; a stray non-UTF-8 byte must not make the whole file
    // unreadable, it only spoils the word it is in.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn lex_into(
    text: &str,
    file: Arc<str>,
    path: Option<&Path>,
    depth: usize,
    out: &mut Vec<Line>,
) -> Result<(), ImportError> {
    for (n, raw) in text.lines().enumerate() {
        let loc = Loc {
            file: file.clone(),
            line: n + 1,
        };
        let toks = tokens(raw, &loc)?;
        if toks.is_empty() {
            continue;
        }
        if toks[0] == Tok::Word("include".into()) {
            include(&toks, &loc, path, depth, out)?;
            continue;
        }
        out.push(Line { loc, toks });
    }
    Ok(())
}

fn include(
    toks: &[Tok],
    loc: &Loc,
    path: Option<&Path>,
    depth: usize,
    out: &mut Vec<Line>,
) -> Result<(), ImportError> {
    let pattern = match toks {
        [_, Tok::Word(p)] => p,
        _ => {
            return Err(ImportError::new(
                loc,
                "include: expected one file name or glob pattern",
            ))
        }
    };
    let Some(path) = path else {
        return Err(ImportError::new(
            loc,
            "include: not available for in-memory input (import from a file)",
        ));
    };
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(ImportError::new(
            loc,
            format!("include {pattern}: includes nested more than {MAX_INCLUDE_DEPTH} deep (a cycle?)"),
        ));
    }
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        path.parent().unwrap_or(Path::new(".")).join(pattern)
    };
    let files = glob(&full);
    if files.is_empty() {
        // keepalived logs and goes on; a missing include is a missing part of the
        // configuration, so here it is an error.
        return Err(ImportError::new(
            loc,
            format!("include {pattern}: no file matches {}", full.display()),
        ));
    }
    for f in files {
        let name: Arc<str> = Arc::from(f.display().to_string());
        let text = read(&f, loc)?;
        lex_into(&text, name, Some(&f), depth + 1, out)?;
    }
    Ok(())
}

/// Splits one line into tokens, dropping the comment.
fn tokens(line: &str, loc: &Loc) -> Result<Vec<Tok>, ImportError> {
    let mut toks = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars();
    let flush = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(Tok::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '{' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Open);
            }
            '}' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Close);
            }
            '"' => {
                // A quoted string is one word, quotes removed; text glued to it
                // (`a"b c"`) joins the same word, as in keepalived.
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == '"' {
                        closed = true;
                        break;
                    }
                    word.push(q);
                }
                if !closed {
                    return Err(ImportError::new(loc, "unterminated quoted string (missing '\"')"));
                }
                if word.is_empty() {
                    // `""`: an empty argument is still an argument.
                    toks.push(Tok::Word(String::new()));
                }
            }
            c if c.is_whitespace() => flush(&mut word, &mut toks),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut toks);
    Ok(toks)
}

/// Files matching `pattern` (`*`, `?` and `[...]` in any component, as glob(3)
/// without GLOB_BRACE), sorted. Wildcards do not match a leading `.`.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = comp.as_os_str().to_string_lossy();
        let wild = part.contains(['*', '?', '[']);
        let mut next = Vec::new();
        for base in &current {
            if !wild {
                next.push(base.join(comp.as_os_str()));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| wildcard_match(part.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        current = next;
    }
    current.into_iter().filter(|p| p.is_file()).collect()
}

/// fnmatch(3) for one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`.
fn wildcard_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star_p, mut star_n) = (usize::MAX, 0);
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = p;
                    star_n = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pat[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // No closing ']': a literal '['.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p == usize::MAX {
            return false;
        }
        p = star_p + 1;
        star_n += 1;
        n = star_n;
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pat` (`[...]`): whether it
/// matched and the class's length, or None if the class is not closed.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if pat[i] <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Tok> {
        tokens(
            line,
            &Loc {
                file: "t".into(),
                line: 1,
            },
        )
        .unwrap()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn braces_quotes_and_comments() {
        assert_eq!(words("track_script{"), vec![w("track_script"), Tok::Open]);
        assert_eq!(words("  a b}  # c } d"), vec![w("a"), w("b"), Tok::Close]);
        assert_eq!(
            words(r#"notify_master "/x.sh master 1.2.3.4" ! z"#),
            vec![w("notify_master"), w("/x.sh master 1.2.3.4")]
        );
        assert_eq!(
            words("192.0.2.12/24 dev eth0 label eth0:1#<==VIP"),
            vec![w("192.0.2.12/24"), w("dev"), w("eth0"), w("label"), w("eth0:1")]
        );
        assert_eq!(words(r#"script "a # b""#), vec![w("script"), w("a # b")]);
        assert_eq!(words("! Configuration File"), Vec::<Tok>::new());
        assert!(tokens(
            "script \"abc",
            &Loc {
                file: "t".into(),
                line: 3
            }
        )
        .is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.conf", b"a.conf"));
        assert!(!wildcard_match(b"*.conf", b"a.conf.bak"));
        assert!(wildcard_match(b"vs_??.conf", b"vs_01.conf"));
        assert!(wildcard_match(b"[a-c]*", b"b1"));
        assert!(!wildcard_match(b"[!a-c]*", b"b1"));
        assert!(wildcard_match(b"a*b*c", b"aXXbYYc"));
        assert!(!wildcard_match(b"a*b*c", b"aXXbYY"));
        assert!(wildcard_match(b"[x", b"[x"));
    }
}
