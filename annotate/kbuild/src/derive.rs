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

#[cfg(test)]
mod tests {
    use crate::{CompileCommand, ModuleDir, ModuleSpec, Source};
    use std::path::{Path, PathBuf};

    fn source(dir: &Path, c: &str, command: Option<CompileCommand>) -> Source {
        Source {
            path: dir.join(c),
            object: dir.join(c).with_extension("o"),
            command,
        }
    }

    fn command(dir: &Path, c: &str) -> CompileCommand {
        CompileCommand {
            cmd_file: dir.join(format!(".{c}.o.cmd")),
            cwd: PathBuf::from("/k"),
            compiler: "gcc".into(),
            args: vec![
                format!("-I{}", dir.display()),
                "-DKBUILD_BASENAME=\"a\"".into(),
                "-c".into(),
                "-o".into(),
                dir.join("a.o").display().to_string(),
                dir.join("a.c").display().to_string(),
            ],
            deps: Vec::new(),
        }
    }

    fn module_dir(dir: &Path, sources: Vec<Source>) -> ModuleDir {
        ModuleDir {
            root: PathBuf::from("/k"),
            dir: dir.to_path_buf(),
            in_tree: false,
            makefile: dir.join("Kbuild"),
            modules: vec![ModuleSpec {
                name: "m".into(),
                modname: "m".into(),
                sources,
            }],
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn old_files_get_the_new_commands_moved_to_their_directory() {
        let (new_dir, old_dir) = (Path::new("/w/v2"), Path::new("/w/v1"));
        let new = module_dir(
            new_dir,
            vec![source(new_dir, "a.c", Some(command(new_dir, "a")))],
        );
        let mut old = module_dir(
            old_dir,
            vec![
                source(old_dir, "a.c", None),
                source(old_dir, "gone.c", None),
            ],
        );
        let notes = old.derive_commands(&new);
        let srcs = &old.modules[0].sources;
        let a = srcs[0].command.as_ref().unwrap();
        assert!(a.args.contains(&"-I/w/v1/".to_string()), "{:?}", a.args);
        assert!(a.args.contains(&"/w/v1/a.c".to_string()), "{:?}", a.args);
        // A file the new version lacks: the first file's command, with its
        // own name and basename, and a note.
        let gone = srcs[1].command.as_ref().unwrap();
        // (Path::join of the empty rest leaves a trailing `/`.)
        assert!(
            gone.args.iter().any(|x| x.starts_with("/w/v1/gone.c")),
            "{:?}",
            gone.args
        );
        assert!(gone
            .args
            .contains(&"-DKBUILD_BASENAME=\"gone\"".to_string()));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("gone.c has no counterpart"), "{notes:?}");
    }
}
