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

mod text;

use super::Ctx;
use modswap_clang::{Cursor, FileId, Kind, Unsaved};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
pub(crate) use text::DEFINES;
use text::{declarator_tail, fold, guesses};

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
