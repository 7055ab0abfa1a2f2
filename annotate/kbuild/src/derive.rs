//! Compile commands for a version of a module directory that was not
//! built: derived from another, built version's. This is how `modswap
//! handler` parses the old version of a module (a directory or a git
//! revision, usually never built there) with the new version's flags:
//!
//! - a C file that exists in both versions (same path relative to the
//!   module directory) gets the new version's command for that file, with
//!   every path argument inside the new module directory (`-I`, `-include`,
//!   the source, the object) moved to the old one;
//! - a C file only the old version has (renamed or removed since) gets the
//!   command of the first C file of the same module in the new version,
//!   moved the same way, with `KBUILD_BASENAME` set to its own name; a note
//!   says so (per-file `CFLAGS_<obj>.o` of the old Makefile are not
//!   reproduced).
//!
//! Include paths are never guessed: the kernel's come from the new
//! version's Kbuild command, the module's own are moved with the
//! directory.

use crate::ModuleDir;

impl ModuleDir {
    /// Gives every C file of this (old) version a compile command derived
    /// from `new`'s, by the rule above. Returns a note for each C file that
    /// had no counterpart.
    pub fn derive_commands(&mut self, new: &ModuleDir) -> Vec<String> {
        let old = self;
        let mut notes = Vec::new();
        for m in &mut old.modules {
            let Some(nm) = new.modules.iter().find(|n| n.name == m.name) else {
                continue;
            };
            let first = nm
                .sources
                .iter()
                .find_map(|s| Some((s, s.command.as_ref()?)));
            for s in &mut m.sources {
                let rel = s
                    .path
                    .strip_prefix(&old.dir)
                    .unwrap_or(&s.path)
                    .to_path_buf();
                let same = nm.sources.iter().find_map(|ns| {
                    let nrel = ns.path.strip_prefix(&new.dir).ok()?;
                    (nrel == rel).then_some(ns.command.as_ref()?)
                });
                if let Some(c) = same {
                    s.command = Some(c.retarget(&new.dir, &old.dir));
                } else if let Some((fs, c)) = first {
                    let stem = s
                        .path
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    s.command = Some(
                        c.retarget(&new.dir, &old.dir)
                            .retarget(
                                &old.dir
                                    .join(fs.path.strip_prefix(&new.dir).unwrap_or(&fs.path)),
                                &s.path,
                            )
                            .with_define("KBUILD_BASENAME", &format!("\"{stem}\"")),
                    );
                    notes.push(format!(
                        "the old version's {} has no counterpart in the new version; it was parsed \
                         with the flags of {} (KBUILD_BASENAME adjusted)",
                        rel.display(),
                        fs.path.strip_prefix(&new.dir).unwrap_or(&fs.path).display()
                    ));
                }
            }
        }
        notes
    }
}
