//! Header function bodies, which the analysis never reads.
//!
//! The analysis reads the function bodies of the module directory only, but
//! libclang spends most of a parse on the bodies of the kernel headers'
//! inline functions (measured on fs/fat: about half of the parse). So the
//! units of a directory read the kernel headers from memory with those
//! bodies folded: `{ ... }` becomes `$ ... )`, and `$` starts a macro call
//! that takes the body as its argument (see [`DEFINES`]). The macro still
//! expands the body's tokens, so `__COUNTER__` counts as for the compiler,
//! then drops them and ends the definition, now a declaration, with `;`.
//! Only the two braces change, so every declaration, type, macro, name and
//! location the analysis reads stays the same (a test compares the IR of
//! both ways on real kernel directories).
//!
//! The bodies come from two places:
//! - guesses, before the first parse, from the text of the headers that
//!   Kbuild's dependency lists (`.<object>.cmd`) name: the kernel lays a
//!   function definition out as a line ending in `)`, a line `{`, the
//!   body, and a line `}` ([`HeaderBodies::guess`]). Each parse checks the
//!   guesses it read against its declarations ([`HeaderBodies::check`]): a
//!   wrong one is unfolded and the unit parsed again;
//! - the parses themselves: every header function body a parse shows whose
//!   braces are plain text of the header (no macro made them) is folded
//!   for the later units ([`HeaderBodies::learn`]).
//!
//! Files of the module directory are never touched.

use super::Ctx;
use modswap_clang::{Cursor, FileId, Kind, Unsaved};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The headers with folded bodies for one directory, shared by its parser
/// threads.
#[derive(Default)]
pub(crate) struct HeaderBodies {
    /// Off: fold nothing, every unit is parsed in full.
    enabled: bool,
    headers: Mutex<BTreeMap<PathBuf, Header>>,
    /// Counts for [`super::ParseStats`].
    stats: Mutex<super::ParseStats>,
}

/// One header (absolute, normalized path) and the bodies folded in it.
#[derive(Default)]
struct Header {
    /// The folded body ranges `{ ... }`: `false` when a parse showed the
    /// range is a function's body, `true` for a guess from the text that
    /// no parse has confirmed yet.
    folds: BTreeMap<(usize, usize), bool>,
    /// A parse has shown this header's function bodies.
    learnt: bool,
    /// The file with `folds` folded; `None` when nothing is folded.
    text: Option<Arc<[u8]>>,
}

/// What one parse read from memory: the files, and the guesses in them
/// that still wait for a parse to confirm them.
#[derive(Default)]
pub(crate) struct Snapshot {
    pub(crate) unsaved: Vec<Unsaved>,
    guesses: Vec<(usize, (usize, usize))>,
}

impl HeaderBodies {
    pub(crate) fn new(enabled: bool) -> HeaderBodies {
        HeaderBodies {
            enabled,
            headers: Mutex::default(),
            stats: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Header>> {
        self.headers.lock().expect("no panics while locked")
    }

    /// Makes `path` read as `contents` (tests: a fold gone wrong).
    #[cfg(test)]
    pub(crate) fn insert(&self, path: PathBuf, contents: &[u8]) {
        self.lock().insert(
            path,
            Header {
                learnt: true,
                text: Some(Arc::from(contents)),
                ..Header::default()
            },
        );
    }

    pub(crate) fn stats(&self) -> super::ParseStats {
        *self.stats.lock().expect("no panics while locked")
    }

    /// The headers to read from memory, sorted by path, and the guesses
    /// in them still to confirm.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for (path, h) in self.lock().iter() {
            let Some(contents) = &h.text else { continue };
            snap.unsaved.push(Unsaved {
                path: path.clone(),
                contents: contents.clone(),
            });
            for (&range, &guess) in &h.folds {
                if guess {
                    snap.guesses.push((snap.unsaved.len() - 1, range));
                }
            }
        }
        snap
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

    /// Guesses the function bodies of `headers` from their text, before
    /// any parse: a line that is exactly `{` after a line ending in `)`
    /// (not a directive), up to the next line that is exactly `}`, as the
    /// kernel's style lays out function definitions. Files of
    /// `module_dir`, files that are not `.h`, and headers already known
    /// are left alone. Each parse that reads a guess checks it
    /// ([`HeaderBodies::check`]).
    pub(crate) fn guess(&self, headers: impl IntoIterator<Item = PathBuf>, module_dir: &Path) {
        if !self.enabled {
            return;
        }
        let mut known = self.lock();
        let mut guessed = 0;
        for path in headers {
            if path.starts_with(module_dir)
                || path.extension().is_none_or(|e| e != "h")
                || known.contains_key(&path)
            {
                continue;
            }
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            let mut folded = Vec::new();
            let Some(out) = fold(&text, &guesses(&text), &mut folded) else {
                continue;
            };
            guessed += folded.len();
            let folds = folded.into_iter().map(|r| (r, true)).collect();
            known.insert(
                path,
                Header {
                    folds,
                    learnt: false,
                    text: Some(Arc::from(out)),
                },
            );
        }
        let mut stats = self.stats.lock().expect("no panics while locked");
        stats.guessed_bodies += guessed;
        stats.header_bodies += guessed;
        stats.folded_bodies += guessed;
    }

    /// Checks the guesses `snap` read against the unit parsed with it. A
    /// guess holds when a function declaration of that header ends before
    /// the folded body with nothing but blanks, comments or macros that
    /// expand to nothing (`__releases(x)`) in between ([`declarator_tail`]),
    /// so the body was that function's: it is confirmed. A guess in a range
    /// the preprocessor skipped is unfolded (later units that read it
    /// parse it in full). A guess that does not hold is unfolded too, and
    /// `false` is returned: the unit must be parsed again.
    pub(crate) fn check(
        &self,
        snap: &Snapshot,
        tu: &modswap_clang::TranslationUnit<'_>,
        top: &[Cursor<'_>],
        read: &[PathBuf],
    ) -> bool {
        let read: std::collections::BTreeSet<&PathBuf> = read.iter().collect();
        let guesses: Vec<(usize, (usize, usize))> = snap
            .guesses
            .iter()
            .copied()
            .filter(|&(f, _)| read.contains(&snap.unsaved[f].path))
            .collect();
        if guesses.is_empty() {
            return true;
        }
        let path_of = |f: usize| snap.unsaved[f].path.as_path();
        // First the guesses in skipped ranges: they stay guesses.
        let wanted: HashMap<&Path, usize> = guesses.iter().map(|&(f, _)| (path_of(f), f)).collect();
        let mut files = HashMap::new();
        let mut skipped: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for r in tu.skipped_ranges() {
            if let Some(f) = file_index(&mut files, r.file, || Some(r.path()), &wanted) {
                skipped
                    .entry(f)
                    .or_default()
                    .push((r.start as usize, r.end as usize));
            }
        }
        let (skipped, active): (Vec<_>, Vec<_>) = guesses.into_iter().partition(|&(f, range)| {
            skipped
                .get(&f)
                .is_some_and(|v| v.iter().any(|&(s, e)| s <= range.0 && range.1 <= e))
        });
        // Where each function declaration of those headers ends, by file
        // identity (a file's name is read once).
        let wanted: HashMap<&Path, usize> = active.iter().map(|&(f, _)| (path_of(f), f)).collect();
        let mut files = HashMap::new();
        let mut ends: HashMap<usize, Vec<usize>> = HashMap::new();
        if !active.is_empty() {
            for c in top {
                if c.kind() != Kind::FunctionDecl {
                    continue;
                }
                let Some((id, end)) = c.extent_end() else {
                    continue;
                };
                if let Some(f) = file_index(&mut files, id, || c.location().file, &wanted) {
                    ends.entry(f).or_default().push(end as usize);
                }
            }
        }
        for v in ends.values_mut() {
            v.sort_unstable();
        }
        let (confirmed, wrong): (Vec<_>, Vec<_>) = active.into_iter().partition(|&(f, range)| {
            let ends = ends.get(&f).map(Vec::as_slice).unwrap_or(&[]);
            let i = ends.partition_point(|&e| e <= range.0);
            i > 0
                && snap.unsaved[f]
                    .contents
                    .get(ends[i - 1]..range.0)
                    .is_some_and(declarator_tail)
        });
        let mut headers = self.lock();
        for &(f, range) in &confirmed {
            if let Some(g) = headers
                .get_mut(path_of(f))
                .and_then(|h| h.folds.get_mut(&range))
            {
                *g = false;
            }
        }
        // Wrong guesses are unfolded, and so are the guesses this unit
        // skipped: a unit that reads them is parsed with them in full (and
        // teaches their bodies if they are bodies), so that no later parse
        // has to check them again.
        let mut refold: std::collections::BTreeSet<&Path> = Default::default();
        let (mut unfolded, mut rejected) = (0, 0);
        for (&(f, range), is_wrong) in skipped
            .iter()
            .map(|g| (g, false))
            .chain(wrong.iter().map(|g| (g, true)))
        {
            if let Some(h) = headers.get_mut(path_of(f)) {
                if h.folds.remove(&range).is_some() {
                    unfolded += 1;
                    rejected += usize::from(is_wrong);
                    refold.insert(path_of(f));
                }
            }
        }
        for path in refold {
            let h = headers.get_mut(path).expect("just found");
            h.text = refolded(path, h);
        }
        let mut stats = self.stats.lock().expect("no panics while locked");
        stats.rejected_guesses += rejected;
        stats.guessed_bodies -= unfolded;
        stats.folded_bodies -= unfolded;
        stats.header_bodies -= unfolded;
        wrong.is_empty()
    }

    /// Learns the bodies of the headers of `tu` that no parse has shown
    /// yet. `top` are the unit's top-level cursors.
    pub(crate) fn learn(&self, top: &[Cursor<'_>], ctx: &Ctx) {
        if !self.enabled {
            return;
        }
        /// A header of this unit with function definitions.
        struct Seen {
            path: PathBuf,
            bodies: Vec<(usize, usize)>,
            /// Learnt already, or not a header.
            skip: bool,
        }
        // By libclang file identity first (cheap), paths only for the files
        // that have definitions.
        let mut seen: HashMap<FileId, Seen> = HashMap::new();
        let learnt: std::collections::BTreeSet<PathBuf> = self
            .lock()
            .iter()
            .filter(|(_, h)| h.learnt)
            .map(|(p, _)| p.clone())
            .collect();
        for c in top {
            if c.kind() != Kind::FunctionDecl || !c.is_definition() {
                continue;
            }
            let Some(id) = c.file_id() else { continue };
            if ctx.file_in_module_dir(Some(id), || c.location()) {
                continue;
            }
            let h = seen.entry(id).or_insert_with(|| {
                let path = c
                    .location()
                    .file
                    .map(|f| super::abs(&f))
                    .unwrap_or_default();
                let skip =
                    path.as_os_str().is_empty() || learnt.contains(&path) || path == ctx.main_file;
                Seen {
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
        let mut headers = self.lock();
        let mut stats = self.stats.lock().expect("no panics while locked");
        for Seen { path, bodies, skip } in seen.into_values() {
            if skip {
                continue;
            }
            let h = headers.entry(path.clone()).or_default();
            if h.learnt {
                continue;
            }
            h.learnt = true;
            let before = h.folds.len();
            stats.header_bodies += bodies.len();
            for r in bodies {
                h.folds.insert(r, false);
            }
            h.text = refolded(&path, h);
            stats.folded_bodies += h.folds.len() - before;
        }
    }
}

/// The index in a [`Snapshot`] of the file `id` when it is `wanted`; its
/// name (`path`) is read once per file.
fn file_index(
    files: &mut HashMap<FileId, Option<usize>>,
    id: FileId,
    path: impl FnOnce() -> Option<PathBuf>,
    wanted: &HashMap<&Path, usize>,
) -> Option<usize> {
    *files.entry(id).or_insert_with(|| {
        let p = super::abs(&path()?);
        wanted.get(p.as_path()).copied()
    })
}

/// Whether `gap`, between the end of a function declaration and a
/// guessed body, can only be the rest of that declaration: blanks,
/// comments, attribute macros that expand to nothing (`__releases(x)`).
/// Nothing that ends a declaration or starts another declarator: no `;`,
/// `{`, `}`, directive, fold, and no `,` or `=` outside parentheses.
fn declarator_tail(gap: &[u8]) -> bool {
    let mut depth = 0i64;
    for &b in gap {
        match b {
            b';' | b'{' | b'}' | b'#' | b'$' => return false,
            b'(' => depth += 1,
            b')' => depth -= 1,
            b',' | b'=' if depth <= 0 => return false,
            _ => {}
        }
    }
    true
}

/// The header on disk with `h.folds` folded; drops from `h.folds` the
/// ranges that do not fold.
fn refolded(path: &Path, h: &mut Header) -> Option<Arc<[u8]>> {
    let text = std::fs::read(path).ok()?;
    let ranges: Vec<(usize, usize)> = h.folds.keys().copied().collect();
    let mut folded = Vec::new();
    let out = fold(&text, &ranges, &mut folded);
    let keep: std::collections::BTreeSet<(usize, usize)> = folded.into_iter().collect();
    h.folds.retain(|r, _| keep.contains(r));
    out.map(Arc::from)
}

/// Function bodies guessed from a header's text in the kernel's layout:
/// `(start, end)` where the line before `start` ends in `)`, the line at
/// `start` is exactly `{`, and the first later line that is exactly `}`
/// ends at `end`; neither line of the head is a preprocessor directive or
/// part of one, and the braces between balance.
fn guesses(text: &[u8]) -> Vec<(usize, usize)> {
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut off = 0;
    for l in text.split(|&b| b == b'\n') {
        lines.push((off, l));
        off += l.len() + 1;
    }
    let trim = |l: &[u8]| -> usize {
        l.iter()
            .rposition(|b| !b" \t\r\x0b\x0c".contains(b))
            .map_or(0, |i| i + 1)
    };
    // Whether each line is ordinary C: not a directive, not continuing a
    // line that ends with a backslash.
    let mut plain = Vec::with_capacity(lines.len());
    let mut continued = false;
    for &(_, l) in &lines {
        let directive = l.iter().find(|b| !b" \t\x0c\x0b\r".contains(b)) == Some(&b'#');
        plain.push(!continued && !directive);
        continued = l[..trim(l)].ends_with(b"\\");
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < lines.len() {
        let (start, l) = lines[i];
        let prev = lines[i - 1].1;
        if !(plain[i]
            && plain[i - 1]
            && &l[..trim(l)] == b"{"
            && prev[..trim(prev)].ends_with(b")"))
        {
            i += 1;
            continue;
        }
        let Some(j) = (i + 1..lines.len()).find(|&j| &lines[j].1[..trim(lines[j].1)] == b"}")
        else {
            break;
        };
        let end = lines[j].0 + 1;
        let body = &text[start..end];
        if runs(&body[1..body.len() - 1]).is_some_and(|r| balanced(&r, b'{', b'}')) {
            out.push((start, end));
        }
        i = j + 1;
    }
    out
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

/// The command-line definitions that make a folded body go away. A body
/// `{ ... }` is folded into `$ ... )`: the same text with its braces
/// replaced. `$` expands to `;` (which ends the definition, now a
/// declaration) and the start of a call of `__msw_eat`, whose arguments
/// are the body's tokens up to the `)` that took the closing brace's
/// place. `__msw_eat` expands its arguments (so `__COUNTER__` and every
/// other macro in the body is expanded exactly as when the body is
/// compiled, and `__UNIQUE_ID` names stay the same) and hands them to
/// `__msw_none`, which drops them. Directives inside the body work as in
/// the body (clang processes them while it collects macro arguments). `$`
/// is an identifier character for GCC and clang; the kernel's C never
/// names anything `$` (only its assembly does). They are passed only to
/// parses that read folded headers.
pub(crate) const DEFINES: [&str; 3] = [
    "-D$=;__msw_eat(",
    "-D__msw_eat(...)=__msw_none(__VA_ARGS__)",
    "-D__msw_none(...)=",
];

/// `text` with each body range `{ ... }` folded into `$ ... )` (see
/// [`DEFINES`]): every other byte stays, so lines and columns do. A range
/// is folded only if it still starts with `{` and ends with `}` (the file
/// is the one that was parsed and a macro made neither brace), no
/// identifier character touches the `{` (it would merge with `$`), its
/// comments and literals end inside it, and its parentheses balance (the
/// `)` must close the call; a function body's tokens balance unless a
/// macro opens or closes one, which this refuses). Ranges must not
/// overlap; `folded` gets the ones folded. `None` when none is.
fn fold(
    text: &[u8],
    bodies: &[(usize, usize)],
    folded: &mut Vec<(usize, usize)>,
) -> Option<Vec<u8>> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let mut out = text.to_vec();
    let mut last_end = 0;
    let mut any = false;
    for &(s, e) in bodies {
        if s < last_end || e < s + 2 || e > text.len() {
            continue;
        }
        let body = &text[s..e];
        if body[0] != b'{' || body[body.len() - 1] != b'}' {
            continue;
        }
        // Nor through a backslash-newline.
        let spliced = body[1] == b'\\' || (s >= 2 && matches!(&text[s - 2..s], b"\\\n" | b"\\\r"));
        if ident(body[1]) || (s > 0 && ident(text[s - 1])) || spliced {
            continue;
        }
        if !runs(&body[1..body.len() - 1]).is_some_and(|r| balanced(&r, b'(', b')')) {
            continue;
        }
        out[s] = b'$';
        out[e - 1] = b')';
        last_end = e;
        any = true;
        folded.push((s, e));
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

/// Whether `open` and `close` pair up in `runs` (outside literals).
fn balanced(runs: &[&[u8]], open: u8, close: u8) -> bool {
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
                None if c == open => depth += 1,
                None if c == close => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                None => {}
            }
            i += 1;
        }
    }
    depth == 0
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
        fold(text, &[range(text)], &mut Vec::new()).map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn folds_bodies_by_replacing_their_braces() {
        let text = "static inline int f(int x)\n{\n\treturn x;\n} int g;\n";
        assert_eq!(
            fold_one(text.as_bytes()).unwrap(),
            "static inline int f(int x)\n$\n\treturn x;\n) int g;\n"
        );
        // Directives, backslash-newlines and empty bodies stay as they are.
        let text = "void f(void)\n{\n#ifdef X\n\ta(1, \\\n 2);\n#endif\n}\nvoid g(void) {}\n";
        let mut folded = Vec::new();
        let (g, e) = (text.find("{}").unwrap(), text.find("}\nvoid").unwrap() + 1);
        let ranges = [(13, e), (g, g + 2)];
        let out = fold(text.as_bytes(), &ranges, &mut folded).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "void f(void)\n$\n#ifdef X\n\ta(1, \\\n 2);\n#endif\n)\nvoid g(void) $)\n"
        );
        assert_eq!(folded, ranges);
    }

    /// The folded text goes through the preprocessor as the definitions
    /// say: the bodies are gone, their directives and `__COUNTER__`s
    /// counted.
    #[test]
    fn the_definitions_drop_folded_bodies_and_count_their_counters() {
        let text = "int f(int x)\n{\n#ifdef X\n\treturn __COUNTER__ + (x);\n#endif\n\
            \treturn 0;\n}\nvoid g(void) {}\nint after = __COUNTER__;\n";
        let s = text.find('{').unwrap();
        let e = text.find("}\nvoid").unwrap() + 1;
        let g = text.find("{}").unwrap();
        let out = fold(text.as_bytes(), &[(s, e), (g, g + 2)], &mut Vec::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.c");
        std::fs::write(&file, &out).unwrap();
        for (define, counted) in [(None, 0), (Some("-DX"), 1)] {
            let mut args: Vec<String> = DEFINES.iter().map(|d| d.to_string()).collect();
            args.extend(define.map(String::from));
            let index = modswap_clang::Index::new().unwrap();
            let tu = index
                .parse(&file, &args, modswap_clang::ParseOptions::default())
                .unwrap();
            assert!(tu.diagnostics().iter().all(|d| !d.is_error()));
            let top = tu.cursor().children();
            let f = top.iter().find(|c| c.spelling() == "f").unwrap();
            assert!(!f.is_definition());
            let after = top.iter().find(|c| c.spelling() == "after").unwrap();
            let init = after.var_initializer().unwrap();
            assert!(
                matches!(init.evaluate(), Some(modswap_clang::EvalResult::Int(n)) if n == counted),
                "{define:?}"
            );
        }
    }

    #[test]
    fn guesses_bodies_in_the_kernel_layout() {
        let text = "static inline int f(int x,\n\t\t\tint y)\n{\n\tif (x) {\n\t\treturn y;\n\t}\n\treturn 0;\n}\n\
            #define M(x) \\\n\tg(x)\n{\n}\n\
            struct a { int b; };\n{\n}\n\
            int g(void)\n{\n\tif (x) {\n}\n\t}\n}\n\
            int h(void)\n{\n\t/* } */ k();\n}\n";
        let found: Vec<&str> = guesses(text.as_bytes())
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        // f's body (nested braces balance); not after a directive or its
        // continuation, not after `;`; g's braces do not balance up to the
        // first `}` line; a brace in a comment does not count.
        assert_eq!(
            found,
            [
                "{\n\tif (x) {\n\t\treturn y;\n\t}\n\treturn 0;\n}",
                "{\n\t/* } */ k();\n}",
            ]
        );
    }

    #[test]
    fn a_declarator_tail_holds_attributes_only() {
        assert!(declarator_tail(b"\n"));
        assert!(declarator_tail(b" /* note */\n\t__releases(&a->lock)\n"));
        assert!(declarator_tail(b" __attribute__((nonnull(1, 2)))\n"));
        for gap in [
            &b";\n"[..],
            b"\n$()\n",
            b", x = 1\n",
            b"\n#endif\n",
            b"}\n",
            b" = {\n",
        ] {
            assert!(!declarator_tail(gap), "{:?}", std::str::from_utf8(gap));
        }
    }

    #[test]
    fn keeps_literals_whole_and_refuses_what_it_cannot_fold() {
        // Braces and parentheses in literals and comments do not count.
        let text = b"void f(void)\n{\n\t\tputs(\"a } ( // b\"); c(')'); /* ( */\n}\n";
        let out = fold_one(text).unwrap();
        assert!(out.starts_with("void f(void)\n$\n\t\tputs("), "{out}");
        // Unbalanced parentheses (a macro would close them).
        assert!(fold_one(b"void f(void)\n{\n\t\t\tOPEN a);\n}\n").is_none());
        // Braces a macro made: the text there is not `{ ... }`.
        assert!(fold(b"void f(void) BODY\n", &[(13, 17)], &mut Vec::new()).is_none());
        // An unterminated comment.
        assert!(fold_one(b"void f(void)\n{\n\t\t\t/* a\n\n}\n").is_none());
        // `$` would merge with an identifier next to the brace.
        assert!(fold_one(b"void f(void) {a();}\n").is_none());
        assert!(fold_one(b"void f(void) \\\n{\n\ta();\n}\n").is_none());
    }
}
