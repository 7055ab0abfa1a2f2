//! Header function bodies, which the analysis never reads.
//!
//! The analysis reads the function bodies of the module directory only, but
//! libclang spends most of a parse on the bodies of the kernel headers'
//! inline functions (measured on fs/fat: about half of the parse). Once one
//! translation unit of a directory has been parsed, every header function
//! body it saw that is plain text of the header (no macro made its braces,
//! no preprocessor directive inside) is known; the later units of the
//! directory read those headers from memory with each such body folded into
//! `$( ... )` (see [`DEFINES`]): the macro still expands the body's tokens,
//! so `__COUNTER__` counts as for the compiler, then drops them and ends the
//! definition, now a declaration, with `;`. Lines and columns stay, so every
//! declaration, type, macro, name and location the analysis reads stays the
//! same (a test compares the IR of both ways on real kernel directories).
//!
//! Files of the module directory are never touched.

use super::Ctx;
use modswap_clang::{Cursor, FileId, Kind, Unsaved};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The headers learnt so far for one directory, shared by its parser
/// threads. A header maps to its contents without bodies, or to `None`
/// when it has function definitions but none that can be folded.
#[derive(Default)]
pub(crate) struct HeaderBodies {
    /// Off: learn nothing, every unit is parsed in full.
    enabled: bool,
    learnt: Mutex<BTreeMap<PathBuf, Option<Arc<[u8]>>>>,
    /// Counts for [`super::ParseStats`].
    stats: Mutex<super::ParseStats>,
}

impl HeaderBodies {
    pub(crate) fn new(enabled: bool) -> HeaderBodies {
        HeaderBodies {
            enabled,
            learnt: Mutex::default(),
            stats: Mutex::default(),
        }
    }

    /// Makes `path` read as `contents` (tests: a fold gone wrong).
    #[cfg(test)]
    pub(crate) fn insert(&self, path: PathBuf, contents: &[u8]) {
        self.learnt
            .lock()
            .expect("no panics while locked")
            .insert(path, Some(Arc::from(contents)));
    }

    pub(crate) fn stats(&self) -> super::ParseStats {
        *self.stats.lock().expect("no panics while locked")
    }

    /// The headers to read from memory, sorted by path.
    pub(crate) fn unsaved(&self) -> Vec<Unsaved> {
        self.learnt
            .lock()
            .expect("no panics while locked")
            .iter()
            .filter_map(|(path, c)| {
                c.as_ref().map(|contents| Unsaved {
                    path: path.clone(),
                    contents: contents.clone(),
                })
            })
            .collect()
    }

    /// Counts a unit that was parsed again without folds.
    pub(crate) fn note_reparsed_unit(&self) {
        self.stats
            .lock()
            .expect("no panics while locked")
            .reparsed_in_full += 1;
    }

    /// Counts a unit that was parsed with folded headers.
    pub(crate) fn note_folded_unit(&self) {
        self.stats
            .lock()
            .expect("no panics while locked")
            .units_with_folded_headers += 1;
    }

    /// Learns the bodies of the headers of `tu` that are not known yet.
    /// `top` are the unit's top-level cursors.
    pub(crate) fn learn(&self, top: &[Cursor<'_>], ctx: &Ctx) {
        if !self.enabled {
            return;
        }
        /// A header of this unit with function definitions.
        struct Header {
            path: PathBuf,
            bodies: Vec<(usize, usize)>,
            /// Known already, or not a header.
            skip: bool,
        }
        // By libclang file identity first (cheap), paths only for the files
        // that have definitions.
        let mut headers: HashMap<FileId, Header> = HashMap::new();
        let known: std::collections::BTreeSet<PathBuf> = self
            .learnt
            .lock()
            .expect("no panics while locked")
            .keys()
            .cloned()
            .collect();
        for c in top {
            if c.kind() != Kind::FunctionDecl || !c.is_definition() {
                continue;
            }
            let Some(id) = c.file_id() else { continue };
            if ctx.file_in_module_dir(Some(id), || c.location()) {
                continue;
            }
            let h = headers.entry(id).or_insert_with(|| {
                let path = c.location().file.unwrap_or_default();
                let skip = path.as_os_str().is_empty()
                    || known.contains(&path)
                    || super::abs(&path) == ctx.main_file;
                Header {
                    path,
                    bodies: Vec::new(),
                    skip,
                }
            });
            if h.skip {
                continue;
            }
            if let Some(r) = body_range(*c) {
                h.bodies.push(r);
            }
        }
        let mut found: Vec<(PathBuf, Option<Arc<[u8]>>)> = Vec::new();
        for Header {
            path,
            mut bodies,
            skip,
        } in headers.into_values()
        {
            if skip {
                continue;
            }
            bodies.sort_unstable();
            bodies.dedup();
            let mut folded = 0;
            let folded_text = std::fs::read(&path)
                .ok()
                .and_then(|text| fold(&text, &bodies, &mut folded))
                .map(Arc::from);
            let mut stats = self.stats.lock().expect("no panics while locked");
            stats.header_bodies += bodies.len();
            stats.folded_bodies += folded;
            found.push((path, folded_text));
        }
        let mut learnt = self.learnt.lock().expect("no panics while locked");
        for (path, text) in found {
            learnt.entry(path).or_insert(text);
        }
    }
}

/// The byte range `{ ... }` of a function definition's body, when the
/// definition and both braces are plain text of one file.
fn body_range(f: Cursor<'_>) -> Option<(usize, usize)> {
    if !f.extent_is_literal() {
        return None;
    }
    let body = f
        .children()
        .into_iter()
        .rev()
        .find(|c| c.kind() == Kind::CompoundStmt)?;
    if !body.extent_is_literal() {
        return None;
    }
    let e = body.extent();
    let (s, t) = (e.start.file.as_ref()?, e.end.file.as_ref()?);
    if s != t || f.location().file.as_ref() != Some(s) {
        return None;
    }
    Some((e.start.offset as usize, e.end.offset as usize))
}

/// The command-line definitions of the macro that takes a body's place.
/// `$( ... )` expands its argument (so `__COUNTER__` and every other macro
/// in the body is expanded exactly as when the body is compiled, and
/// `__UNIQUE_ID` names stay the same), then drops it and ends the
/// declaration with `;`. `$` is an identifier character for GCC and clang;
/// the kernel's C never names anything `$`.
pub(crate) const DEFINES: [&str; 2] = ["-D$(...)=;__msw_none(__VA_ARGS__)", "-D__msw_none(...)="];

/// `text` with each body range `{ ... }` replaced by `$( ... )` in the same
/// bytes, lines and last column (whitespace and comments of the body make
/// room), or `None` when no range can be replaced. A range is replaced only
/// if it still starts with `{` and ends with `}` (the file is the one that
/// was parsed and a macro made neither brace), holds no preprocessor
/// directive, no backslash-newline and no unbalanced parenthesis, and its
/// tokens fit; ranges must not overlap.
fn fold(text: &[u8], bodies: &[(usize, usize)], folded: &mut usize) -> Option<Vec<u8>> {
    let mut out = text.to_vec();
    let mut last_end = 0;
    let mut any = false;
    for &(s, e) in bodies {
        if s < last_end || e <= s + 1 || e > text.len() {
            continue;
        }
        let body = &text[s..e];
        if body[0] != b'{' || body[body.len() - 1] != b'}' || has_directive(body) {
            continue;
        }
        if body.windows(2).any(|w| w == b"\\\n" || w == b"\\\r") {
            continue;
        }
        let Some(runs) = runs(&body[1..body.len() - 1]) else {
            continue;
        };
        let Some(laid) = lay_out(body, &runs) else {
            continue;
        };
        out[s..e].copy_from_slice(&laid);
        last_end = e;
        any = true;
        *folded += 1;
    }
    any.then_some(out)
}

/// The body's text as runs of non-blank characters, comments dropped,
/// string and character literals kept whole. `None` on an unterminated
/// comment or literal.
fn runs(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    let is_blank = |b: u8| b" \t\n\r\x0b\x0c".contains(&b);
    while i < body.len() {
        let b = body[i];
        let comment = b == b'/' && matches!(body.get(i + 1), Some(b'/') | Some(b'*'));
        if is_blank(b) || comment {
            if let Some(st) = start.take() {
                out.push(&body[st..i]);
            }
            if comment && body[i + 1] == b'/' {
                while i < body.len() && body[i] != b'\n' {
                    i += 1;
                }
            } else if comment {
                let end = body[i + 2..].windows(2).position(|w| w == b"*/")?;
                i += 2 + end + 2;
            } else {
                i += 1;
            }
            continue;
        }
        start.get_or_insert(i);
        if b == b'"' || b == b'\'' {
            i += 1;
            loop {
                match body.get(i)? {
                    b'\\' => i += 2,
                    b'\n' => return None,
                    &c if c == b => break,
                    _ => i += 1,
                }
            }
        }
        i += 1;
    }
    if let Some(st) = start {
        out.push(&body[st..]);
    }
    Some(out)
}

/// Lays `$(`, the runs and `)` into the bytes of `body`: the runs go on
/// the first line, separated by a blank only where two runs could otherwise
/// merge into one token; then come the body's newlines, then its last line
/// (blanks ending in `)`), so the text after the body keeps its line and
/// column. `None` when they do not fit or the parentheses do not balance.
fn lay_out(body: &[u8], runs: &[&[u8]]) -> Option<Vec<u8>> {
    let mut depth: i64 = 0;
    for r in runs {
        let mut in_lit: Option<u8> = None;
        let mut i = 0;
        while i < r.len() {
            let c = r[i];
            match in_lit {
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => in_lit = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => in_lit = Some(c),
                None if c == b'(' => depth += 1,
                None if c == b')' => {
                    depth -= 1;
                    if depth < 0 {
                        return None;
                    }
                }
                None => {}
            }
            i += 1;
        }
    }
    if depth != 0 {
        return None;
    }
    let free = |c: u8| b";,(){}[]".contains(&c);
    let mut first: Vec<u8> = b"$(".to_vec();
    let mut prev: Option<u8> = Some(b'(');
    for r in runs {
        if let (Some(p), Some(&n)) = (prev, r.first()) {
            if !free(p) && !free(n) {
                first.push(b' ');
            }
        }
        first.extend_from_slice(r);
        prev = r.last().copied();
    }
    let newlines = body.iter().filter(|&&b| b == b'\n').count();
    let last = body.len() - body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(&first);
    if newlines == 0 {
        out.push(b')');
        if out.len() > body.len() {
            return None;
        }
        out.resize(body.len(), b' ');
        return Some(out);
    }
    if out.len() + newlines + last > body.len() {
        return None;
    }
    out.resize(body.len() - newlines - last, b' ');
    out.extend(std::iter::repeat_n(b'\n', newlines));
    out.extend(std::iter::repeat_n(b' ', last - 1));
    out.push(b')');
    Some(out)
}

/// Whether a line inside `body` (after its first) starts with `#`.
fn has_directive(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.iter().find(|b| !b" \t\x0c\x0b\r".contains(b)) == Some(&b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &[u8]) -> (usize, usize) {
        let s = text.iter().position(|&b| b == b'{').unwrap();
        let e = text.iter().rposition(|&b| b == b'}').unwrap() + 1;
        (s, e)
    }

    fn fold_one(text: &[u8]) -> Option<String> {
        fold(text, &[range(text)], &mut 0).map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn folds_bodies_into_the_skip_macro_in_the_same_lines() {
        let text = "static inline int f(int x)\n{\n\treturn x;\n} int g;\n";
        assert_eq!(
            fold_one(text.as_bytes()).unwrap(),
            "static inline int f(int x)\n$(return x;\n\n) int g;\n"
        );
        let text =
            "int f(int x)\n{\n\t/* one */\n\tif (x)\n\t\treturn a(x);\n\treturn b(x) - -x;\n\t}\n";
        let out = fold_one(text.as_bytes()).unwrap();
        assert_eq!(out.len(), text.len());
        assert_eq!(out.matches('\n').count(), text.matches('\n').count());
        assert!(
            out.starts_with("int f(int x)\n$(if(x)return a(x);return b(x)- -x;"),
            "{out}"
        );
        assert!(out.ends_with("\n )\n"), "{out}");
        // One line.
        let text = "int f(int x) {  return x;  } int g;";
        assert_eq!(
            fold_one(text.as_bytes()).unwrap(),
            "int f(int x) $(return x;)    int g;"
        );
    }

    #[test]
    fn keeps_literals_whole_and_refuses_what_it_cannot_fold() {
        let text = b"void f(void)\n{\n\t\tputs(\"a } // b\"); c(')');\n}\n";
        let out = fold_one(text).unwrap();
        assert!(out.contains("$(puts(\"a } // b\");c(')');"), "{out}");
        // A directive inside.
        assert!(fold_one(b"void f(void)\n{\n#ifdef X\n\t\ta();\n#endif\n}\n").is_none());
        // A backslash-newline inside.
        assert!(fold_one(b"void f(void)\n{\n\t\t\ta(1, \\\n 2);\n}\n").is_none());
        // No room.
        assert!(fold_one(b"void f(void) {a();}\n").is_none());
        // Unbalanced parentheses (a macro would close them).
        assert!(fold_one(b"void f(void)\n{\n\t\t\tOPEN a);\n}\n").is_none());
        // Braces a macro made: the text there is not `{ ... }`.
        assert!(fold(b"void f(void) BODY\n", &[(13, 17)], &mut 0).is_none());
        // An unterminated comment.
        assert!(fold_one(b"void f(void)\n{\n\t\t\t/* a\n\n}\n").is_none());
    }
}
