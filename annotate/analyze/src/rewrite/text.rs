//! The C text of a declaration: where it starts and ends, where its
//! declarator ends, the marker or section token in it, the include line.
//! Plain text scanning over what the parse located; nothing here decides
//! what a global needs.

use super::{Error, INCLUDE};
use modswap_ir::Global;
use std::path::Path;

/// Sections a marker may replace: they only pick a data section.
pub(super) fn replaceable_section(sec: &str) -> bool {
    replaceable_token(sec).is_some()
}

pub(super) fn replaceable_token(sec: &str) -> Option<&'static str> {
    match sec {
        ".data..read_mostly" => Some("__read_mostly"),
        ".data..ro_after_init" => Some("__ro_after_init"),
        _ => None,
    }
}

/// The declaration's extent in its file, checked against the IR.
pub(super) struct Decl {
    pub(super) start: usize,
    name: usize,
    name_len: usize,
    end: usize,
}

pub(super) fn declaration(text: &str, g: &Global, path: &Path) -> Result<Decl, Error> {
    let changed = || Error::Changed {
        path: path.to_path_buf(),
        line: g.loc.line,
        name: g.name.clone(),
    };
    let (start, name, end) = (
        g.span.start as usize,
        g.span.name as usize,
        g.span.end as usize,
    );
    if start > name
        || name > end
        || end > text.len()
        || !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
    {
        return Err(changed());
    }
    // The name is at `name` (written out), or the declaration is a macro
    // invocation naming it.
    let at_name = text[name..].starts_with(&g.name);
    if !at_name && !text[start..end].contains(&g.name) && g.macro_origin.is_none() {
        return Err(changed());
    }
    Ok(Decl {
        start,
        name,
        name_len: if at_name { g.name.len() } else { 0 },
        end,
    })
}

/// Where the declarator ends: the first `=`, `;` or `,` after the name
/// outside brackets.
pub(super) fn after_declarator(text: &str, d: &Decl) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = d.name + d.name_len;
    let mut depth = 0i32;
    let limit = (d.end + 1).min(b.len());
    while i < limit {
        match b[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'=' | b';' | b',' if depth == 0 => return Some(i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += text[i..].find("*/")? + 1;
            }
            _ => {}
        }
        i += 1;
    }
    // A declaration without initializer ends at its extent; the `;` (or
    // `,`) follows.
    let rest = &text[d.end..];
    let skip = rest.len() - rest.trim_start().len();
    match rest.trim_start().chars().next() {
        Some(';' | ',' | '=') => Some(d.end + skip),
        _ => None,
    }
}

/// An existing `__static_old(...)`/`__static_new(...)` in the declaration.
pub(super) fn find_marker(text: &str, d: &Decl) -> Option<(usize, usize)> {
    let lo = d.start;
    let hi = text[d.end..]
        .find(';')
        .map(|x| d.end + x)
        .unwrap_or(text.len());
    // A marker before the declaration (macro-made ones) is on the same line.
    let line_start = text[..lo].rfind('\n').map(|x| x + 1).unwrap_or(0);
    for mac in ["__static_old(", "__static_new("] {
        if let Some(x) = text[line_start..hi].find(mac) {
            let at = line_start + x;
            let close = text[at..].find(')')? + 1;
            return Some((at, close));
        }
    }
    None
}

/// Extends a removal to one adjacent space.
pub(super) fn with_space(text: &str, at: usize, len: usize) -> (usize, usize) {
    if text[at + len..].starts_with(' ') {
        (at, len + 1)
    } else if text[..at].ends_with(' ') {
        (at - 1, len + 1)
    } else {
        (at, len)
    }
}

/// The offset of identifier `token` in the declaration.
pub(super) fn find_token(text: &str, d: &Decl, token: &str) -> Option<usize> {
    let hi = text[d.end..]
        .find(';')
        .map(|x| d.end + x)
        .unwrap_or(text.len());
    let s = &text[d.start..hi];
    let mut from = 0;
    while let Some(x) = s[from..].find(token) {
        let at = from + x;
        let before = s[..at].chars().next_back();
        let after = s[at + token.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !ident(before) && !ident(after) {
            return Some(d.start + at);
        }
        from = at + token.len();
    }
    None
}

pub(super) fn has_include(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with('#')
            && l.trim_start_matches('#')
                .trim_start()
                .starts_with("include")
            && l.contains("linux/modswap.h")
    })
}

/// Adds the include after the last `#include` at the outermost
/// preprocessor-conditional level that has includes (a header's include
/// guard counts as one level), or at the top after leading comments.
pub(super) fn add_include(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut depth = 0i32;
    let mut best: Option<(i32, usize)> = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        let d = t.trim_start_matches('#').trim_start();
        if d.starts_with("if") {
            depth += 1;
        } else if d.starts_with("endif") {
            depth -= 1;
        } else if d.starts_with("include") {
            match best {
                Some((bd, _)) if depth > bd => {}
                _ => best = Some((depth, i)),
            }
        }
    }
    let at = match best {
        Some((_, i)) => i + 1,
        None => {
            // After the leading comment block.
            let mut i = 0;
            let mut in_block = false;
            while i < lines.len() {
                let t = lines[i].trim();
                if in_block {
                    if t.contains("*/") {
                        in_block = false;
                    }
                    i += 1;
                    continue;
                }
                if t.starts_with("//") || t.is_empty() {
                    i += 1;
                } else if t.starts_with("/*") {
                    in_block = !t.contains("*/");
                    i += 1;
                } else {
                    break;
                }
            }
            i
        }
    };
    let mut out = String::with_capacity(text.len() + INCLUDE.len() + 1);
    for l in &lines[..at] {
        out.push_str(l);
    }
    if at > 0 && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(INCLUDE);
    out.push('\n');
    if best.is_none() && at < lines.len() && at > 0 {
        out.push('\n');
    }
    for l in &lines[at..] {
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_goes_after_the_outermost_includes() {
        let c = "// SPDX\n#include <a.h>\n#ifdef X\n#include <x.h>\n#endif\n#include \"b.h\"\n\nint x;\n";
        assert_eq!(
            add_include(c),
            "// SPDX\n#include <a.h>\n#ifdef X\n#include <x.h>\n#endif\n#include \"b.h\"\n#include <linux/modswap.h>\n\nint x;\n"
        );
        let h = "/* guard */\n#ifndef A_H\n#define A_H\n#include <linux/fs.h>\nint y;\n#endif\n";
        assert_eq!(
            add_include(h),
            "/* guard */\n#ifndef A_H\n#define A_H\n#include <linux/fs.h>\n#include <linux/modswap.h>\nint y;\n#endif\n"
        );
        let bare = "/*\n * comment\n */\nint z;\n";
        assert_eq!(
            add_include(bare),
            "/*\n * comment\n */\n#include <linux/modswap.h>\n\nint z;\n"
        );
        assert!(has_include(&add_include(bare)));
    }

    #[test]
    fn declarator_end_skips_brackets_and_comments() {
        let t = "static const char *names[N(2)] /* = x */ = { \"a\" };";
        let d = Decl {
            start: 0,
            name: t.find("names").unwrap(),
            name_len: 5,
            end: t.len() - 1,
        };
        assert_eq!(after_declarator(t, &d), Some(t.rfind('=').unwrap()));
        let t = "static int x;";
        let d = Decl {
            start: 0,
            name: 11,
            name_len: 1,
            end: 12,
        };
        assert_eq!(after_declarator(t, &d), Some(12));
    }

    #[test]
    fn tokens_match_whole_identifiers() {
        let t = "static int x __read_mostly_not __read_mostly = 1;";
        let d = Decl {
            start: 0,
            name: 11,
            name_len: 1,
            end: t.len() - 1,
        };
        assert_eq!(
            find_token(t, &d, "__read_mostly"),
            t.rfind("__read_mostly ")
        );
    }
}
