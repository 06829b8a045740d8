//! hafront.toml(5) from docs/configuration.md: the man page and the web page are one
//! text, so they cannot drift (issue 18). A small Markdown-to-roff converter for the
//! subset that page uses: headings, paragraphs, lists, fenced code, tables (each row
//! becomes a tagged paragraph: the first cell, then "Header: value" for the others),
//! inline `code`, **bold**, *emphasis* and [links](...).

/// The configuration reference, compiled in.
pub const CONFIGURATION_MD: &str = include_str!("../../docs/configuration.md");

/// The man page of the configuration file, section 5.
pub fn configuration_page(version: &str) -> String {
    markdown_to_roff(
        CONFIGURATION_MD,
        "HAFRONT.TOML",
        "5",
        version,
        "hafront.toml - hafront configuration file",
    )
}

/// Renders Markdown as a man(7) page. `name_line` is the NAME section's text.
pub fn markdown_to_roff(md: &str, title: &str, section: &str, version: &str, name_line: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH \"{title}\" \"{section}\" \"\" \"hafront {}\" \"hafront\"\n",
        escape_text(version)
    ));
    let (name, what) = name_line.split_once(" - ").unwrap_or((name_line, ""));
    out.push_str(&format!(
        ".SH NAME\n{} \\- {}\n",
        escape_text(name),
        escape_text(what)
    ));
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut in_para = false;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(fence) = trimmed.strip_prefix("```") {
            let _lang = fence;
            out.push_str(".PP\n.RS 4\n.nf\n");
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                out.push_str(&escape_line(&escape_text(lines[i])));
                out.push('\n');
                i += 1;
            }
            out.push_str(".fi\n.RE\n");
            in_para = false;
            i += 1;
            continue;
        }
        if let Some(h) = line.strip_prefix("# ") {
            // The page title: the DESCRIPTION starts here.
            let _ = h;
            out.push_str(".SH DESCRIPTION\n");
            in_para = false;
        } else if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(
                ".SH \"{}\"\n",
                escape_text(&strip_inline(h)).to_uppercase()
            ));
            in_para = false;
        } else if let Some(h) = line.strip_prefix("### ").or_else(|| line.strip_prefix("#### ")) {
            out.push_str(&format!(".SS \"{}\"\n", escape_text(&strip_inline(h))));
            in_para = false;
        } else if trimmed.starts_with('|') {
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            table(&mut out, &rows);
            in_para = false;
            continue;
        } else if let Some(item) = list_item(trimmed) {
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&escape_line(&inline(item)));
            out.push('\n');
            in_para = true;
        } else if trimmed.is_empty() {
            in_para = false;
        } else {
            if !in_para {
                out.push_str(".PP\n");
                in_para = true;
            }
            out.push_str(&escape_line(&inline(trimmed)));
            out.push('\n');
        }
        i += 1;
    }
    out.push_str(".SH \"SEE ALSO\"\n\\fBhafront\\fR(8)\n");
    out
}

fn list_item(line: &str) -> Option<&str> {
    line.strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| {
            let digits = line.find(|c: char| !c.is_ascii_digit())?;
            (digits > 0).then(|| line[digits..].strip_prefix(". "))?
        })
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    // `\|` is a literal bar inside a cell.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let is_rule = |r: &Vec<String>| {
        r.iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
    };
    let (header, body): (&[String], &[Vec<String>]) = match rows {
        [h, rule, rest @ ..] if is_rule(rule) => (h, rest),
        _ => (&[], rows),
    };
    for row in body {
        let Some((first, rest)) = row.split_first() else {
            continue;
        };
        out.push_str(".TP\n");
        out.push_str(&escape_line(&inline(first)));
        out.push('\n');
        let parts: Vec<String> = rest
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| match header.get(k + 1) {
                Some(h) if !h.is_empty() => format!("{}: {}", inline(h), inline(v)),
                _ => inline(v),
            })
            .collect();
        if !parts.is_empty() {
            out.push_str(&escape_line(&parts.join("; ")));
            out.push('\n');
        }
    }
}

/// Markdown inline markup to roff fonts; text escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            if let Some(end) = rest[1..].find('`') {
                out.push_str("\\fB");
                out.push_str(&escape_text(&rest[1..1 + end]));
                out.push_str("\\fR");
                rest = &rest[end + 2..];
                continue;
            }
        } else if let Some(body) = rest.strip_prefix("**") {
            if let Some(end) = body.find("**") {
                out.push_str("\\fB");
                out.push_str(&inline(&body[..end]));
                out.push_str("\\fR");
                rest = &body[end + 2..];
                continue;
            }
        } else if c == '[' {
            // [text](target): the text only.
            if let Some(close) = rest.find("](") {
                if let Some(end) = rest[close..].find(')') {
                    out.push_str(&inline(&rest[1..close]));
                    rest = &rest[close + end + 1..];
                    continue;
                }
            }
        } else if c == '*' || c == '_' {
            let body = &rest[1..];
            if let Some(end) = body.find(c) {
                let word = &body[..end];
                if !word.is_empty()
                    && !word.starts_with(' ')
                    && !word.contains('`')
                    && (c == '*' || !word.contains(' '))
                {
                    out.push_str("\\fI");
                    out.push_str(&escape_text(word));
                    out.push_str("\\fR");
                    rest = &body[end + 1..];
                    continue;
                }
            }
        }
        out.push_str(&escape_text(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Drops inline markup (for headings).
fn strip_inline(s: &str) -> String {
    s.replace(['`', '*'], "")
}

fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            // troff reads bytes: anything past ASCII as a named glyph.
            c if !c.is_ascii() => out.push_str(&format!("\\[u{:04X}]", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

/// A line that starts with `.` or `'` would be a request: \& makes it text.
fn escape_line(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_tables_and_code() {
        let md = "# Title\n\nSome `key` text with **bold** and a [link](x.md).\n\n## Section one\n\n| key | type | default |\n|---|---|---|\n| `a.b` | string | `\"x\"` |\n| c\\|d | int | |\n\n```toml\n.starts = \"with a dot\"\nback\\slash\n```\n- item *one*\n";
        let roff = markdown_to_roff(md, "T", "5", "1.0", "t - a test");
        assert!(roff.starts_with(".TH \"T\" \"5\" \"\" \"hafront 1.0\""), "{roff}");
        assert!(roff.contains(".SH NAME\nt \\- a test\n"), "{roff}");
        assert!(
            roff.contains(".PP\nSome \\fBkey\\fR text with \\fBbold\\fR and a link.\n"),
            "{roff}"
        );
        assert!(roff.contains(".SH \"SECTION ONE\"\n"), "{roff}");
        assert!(
            roff.contains(".TP\n\\fBa.b\\fR\ntype: string; default: \\fB\"x\"\\fR\n"),
            "{roff}"
        );
        assert!(roff.contains(".TP\nc|d\ntype: int\n"), "{roff}");
        assert!(
            roff.contains(".nf\n\\&.starts = \"with a dot\"\nback\\eslash\n.fi\n"),
            "{roff}"
        );
        assert!(roff.contains(".IP \\(bu 2\nitem \\fIone\\fR\n"), "{roff}");
        let roff = markdown_to_roff("a \u{2014} b \u{2265} 1\n", "T", "5", "1", "t - x");
        assert!(roff.contains("a \\[u2014] b \\[u2265] 1\n"), "{roff}");
    }

    #[test]
    fn the_configuration_page_covers_every_section() {
        let roff = configuration_page("0.0.0");
        let sections = CONFIGURATION_MD.lines().filter(|l| l.starts_with("## ")).count();
        assert!(sections > 3);
        // Every `## ` heading is a .SH, plus NAME, DESCRIPTION and SEE ALSO.
        assert_eq!(
            roff.lines().filter(|l| l.starts_with(".SH ")).count(),
            sections + 3
        );
        assert!(
            !roff.lines().any(|l| l.starts_with('|')),
            "a table row left as Markdown"
        );
    }
}
