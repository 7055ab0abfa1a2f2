//! The source rewrite: a `__static_old(key)` / `__static_new(key)` marker on
//! every declaration that needs a static address section, and
//! `#include <linux/modswap.h>` in every file that has a marker.
//!
//! Placement (kernel style, checked by compiling with Kbuild):
//! - written-out declarations: after the declarator, before `=`, `;` or `,`
//!   (`static struct file_system_type vfat_fs_type __static_old(vfat_fs_type) = {`);
//! - declarations a macro makes at file scope (`static DEFINE_MUTEX(x);`):
//!   before the declaration, where GNU C takes attributes for the whole
//!   declaration (`__static_old(x) static DEFINE_MUTEX(x);`), when the
//!   macro makes only that one object;
//! - `__read_mostly` and `__ro_after_init` only choose a data section for
//!   speed or hardening: the marker replaces them (a declaration never gets
//!   two section attributes).
//!
//! What cannot be marked is reported with the reason and what it means for
//! a swap: objects a macro declares inside a function (lock class keys,
//! `__already_done`, printk rate-limit states), objects already in another
//! section (`__param`, per-CPU data), objects declared by a macro together
//! with others, objects of a header included by several units.
//!
//! The rewrite is idempotent: markers that are already right are left
//! alone, stale ones (class or key changed) are replaced or removed. Files
//! are written atomically (a temporary file next to each, renamed over it
//! once all are written), so a failure never leaves a half-written file.

mod plan;
mod text;

pub use plan::plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What can go wrong while rewriting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file no longer matches what was parsed.
    #[error("{path}:{line}: expected the declaration of `{name}` here; the file changed since it was parsed")]
    Changed {
        path: PathBuf,
        line: u32,
        name: String,
    },
}

/// The include line the rewrite adds.
pub const INCLUDE: &str = "#include <linux/modswap.h>";

/// The rewrite of one file.
#[derive(Debug, Clone)]
pub struct FileEdit {
    /// As in the IR (`fs/fat/inode.c`).
    pub file: String,
    /// Where it is on disk.
    pub path: PathBuf,
    pub old: String,
    pub new: String,
}

/// What happens to one global's marker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Marker {
    /// The class needs no static section and there is no marker.
    NotNeeded,
    /// The right marker is already there.
    Present { marker: String },
    /// The rewrite adds (or corrects) it.
    Added { marker: String },
    /// The rewrite removes a stale marker (the class needs none any more).
    Removed { marker: String },
    /// It needs a marker that cannot be placed in the source.
    Cannot {
        marker: String,
        why: String,
        /// What that means for a swap.
        consequence: String,
    },
}

/// The whole rewrite of a module directory.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Files whose text changes, sorted by file.
    pub edits: Vec<FileEdit>,
    /// (module, key) -> marker status, for every global.
    pub markers: BTreeMap<(String, String), Marker>,
}

impl Rewrite {
    /// Does the source differ from what the rewrite would make it?
    pub fn is_stale(&self) -> bool {
        !self.edits.is_empty()
    }

    pub fn marker(&self, module: &str, key: &str) -> Option<&Marker> {
        self.markers.get(&(module.to_string(), key.to_string()))
    }

    /// A unified diff of every edit (paths as in the IR, `a/` and `b/`
    /// prefixed, as `patch -p1` from the IR root expects).
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for e in &self.edits {
            let d = similar::TextDiff::from_lines(&e.old, &e.new);
            out.push_str(
                &d.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", e.file), &format!("b/{}", e.file))
                    .to_string(),
            );
        }
        out
    }

    /// Writes every edit. Each file is written to a temporary file next to
    /// it first; only when all are written are they renamed into place.
    pub fn apply(&self) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let mut staged = Vec::new();
        for e in &self.edits {
            // The file must still be there (its permissions carry over).
            std::fs::metadata(&e.path).map_err(io(&e.path))?;
            let s = modswap_util::Staged::new(&e.path, e.new.as_bytes()).map_err(io(&e.path))?;
            staged.push(s);
        }
        // A failed rename drops (and so removes) the temporaries left.
        for s in staged {
            let path = s.path().to_path_buf();
            s.commit().map_err(io(&path))?;
        }
        Ok(())
    }
}

/// One text edit: replace `len` bytes at `at` with `text`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edit {
    at: usize,
    len: usize,
    text: String,
}
