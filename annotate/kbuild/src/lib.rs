//! Kbuild: which sources make which module, and the exact flags each was
//! compiled with.
//!
//! A module directory is either inside a configured kernel tree (in-tree,
//! e.g. `fs/fat`) or an external module built with `make -C <kdir> M=<dir>`.
//! The module list comes from the directory's Kbuild/Makefile evaluated with
//! the tree's `.config`, cross-checked with Kbuild's `<module>.mod` files when
//! the directory has been built. Flags come only from Kbuild's own saved
//! commands (`.<object>.cmd`); nothing is guessed.
//!
//! **Owns**: module directories ([`discover`]), `.cmd` files and their
//! dependency lists ([`cmd`]), Kbuild makefiles ([`makefile`]).
//!
//! **Must not import**: any other modswap crate (it knows nothing of C
//! beyond compile commands, nor of ELF or the IR).

pub mod cmd;
mod derive;
pub mod makefile;

pub use cmd::CompileCommand;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What can go wrong while reading a module directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}: not inside a configured kernel tree (no .config above it); pass --kdir <kernel build or headers dir>")]
    NoKernelTree { dir: PathBuf },
    #[error("{kdir}: not a configured kernel build or headers directory (no .config)")]
    BadKdir { kdir: PathBuf },
    /// The kernel is not the version modswap supports.
    #[error(
        "{kdir} is Linux {release}, but modswap supports Linux {SUPPORTED_KERNEL} only: build \
         and annotate against 6.12 (--kdir /usr/src/linux-headers-6.12.117+deb12-amd64 for \
         Debian's headers, or the hotswap tree `cargo xtask kernel` builds)"
    )]
    WrongKernel { kdir: PathBuf, release: String },
    #[error("{dir}: neither Kbuild nor Makefile found")]
    NoMakefile { dir: PathBuf },
    #[error("{makefile}: no modules (obj-m is empty{skipped})")]
    NoModules { makefile: PathBuf, skipped: String },
    #[error("{cmd_file}: cannot read Kbuild's saved command: {reason}")]
    BadCmdFile { cmd_file: PathBuf, reason: String },
    #[error(
        "{dir}: not built yet, so Kbuild's compile commands are missing for {missing}; \
         build it first with `{make}`"
    )]
    NotBuilt {
        dir: PathBuf,
        missing: String,
        make: String,
    },
    /// A file that is not one of the directory's module sources.
    #[error("{file}: not a C source of a module of {dir} (in this configuration)")]
    NotASource { dir: PathBuf, file: PathBuf },
}

/// The kernel version modswap supports (`VERSION.PATCHLEVEL`).
pub const SUPPORTED_KERNEL: &str = "6.12";

/// The kernel release of a configured tree or header directory:
/// `include/config/kernel.release`, else `VERSION.PATCHLEVEL.SUBLEVEL`
/// from its Makefile; `None` when neither says.
pub fn kernel_release(root: &Path) -> Option<String> {
    if let Ok(r) = std::fs::read_to_string(root.join("include/config/kernel.release")) {
        let r = r.trim();
        if !r.is_empty() {
            return Some(r.to_string());
        }
    }
    let mk = std::fs::read_to_string(root.join("Makefile")).ok()?;
    let var = |name: &str| {
        mk.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}",
        var("VERSION")?,
        var("PATCHLEVEL")?,
        var("SUBLEVEL").unwrap_or_default()
    ))
}

/// Fails unless the kernel at `root` is Linux [`SUPPORTED_KERNEL`]. A
/// tree whose version cannot be read passes (its build will tell).
fn check_kernel_version(root: &Path) -> Result<(), Error> {
    let Some(release) = kernel_release(root) else {
        return Ok(());
    };
    let mut parts = release.split(['.', '-', '+']);
    let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if format!("{major}.{minor}") == SUPPORTED_KERNEL {
        return Ok(());
    }
    Err(Error::WrongKernel {
        kdir: root.to_path_buf(),
        release,
    })
}

/// A module directory with its modules and their sources.
#[derive(Debug, Clone)]
pub struct ModuleDir {
    /// Where Kbuild runs (the kernel tree, or the kdir of an external build).
    pub root: PathBuf,
    /// The module directory, absolute.
    pub dir: PathBuf,
    /// Inside the kernel tree (`make <dir>/`) rather than external (`M=`).
    pub in_tree: bool,
    /// The Kbuild file or Makefile that was read.
    pub makefile: PathBuf,
    /// The modules this directory makes, sorted by name.
    pub modules: Vec<ModuleSpec>,
    /// Modules named in the Makefile that this configuration does not build
    /// as modules, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Things worth telling the user (Makefile constructs not evaluated,
    /// assembly sources, ...).
    pub notes: Vec<String>,
}

/// One `.ko` and the C files that make it.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The object's stem in the Makefile (`fat`, `nls_euc-jp`).
    pub name: String,
    /// KBUILD_MODNAME: the name the kernel knows (`-` becomes `_`).
    pub modname: String,
    pub sources: Vec<Source>,
}

impl Source {
    /// Kbuild's saved command file for the object: `.<object>.cmd`.
    pub fn cmd_file(&self) -> PathBuf {
        let name = self
            .object
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        self.object.with_file_name(format!(".{name}.cmd"))
    }
}

impl ModuleSpec {
    /// The module's .ko, whether or not it has been built.
    pub fn ko(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.ko", self.name))
    }
}

/// One C file of a module.
#[derive(Debug, Clone)]
pub struct Source {
    /// The .c file, absolute.
    pub path: PathBuf,
    /// The object Kbuild makes from it, absolute.
    pub object: PathBuf,
    /// Kbuild's saved command for the object, once the directory is built.
    pub command: Option<CompileCommand>,
}

/// [`discover`]s the module directory `dir` and loads its compile
/// commands ([`ModuleDir::load_commands`]): what every stage after Kbuild
/// needs.
pub fn load(dir: &Path, kdir: Option<&Path>) -> Result<ModuleDir, Error> {
    let mut md = discover(dir, kdir)?;
    md.load_commands()?;
    Ok(md)
}

/// Reads the module directory `dir`. `kdir` is the kernel build or headers
/// directory for external modules; for a directory inside a configured
/// kernel tree it may be omitted.
pub fn discover(dir: &Path, kdir: Option<&Path>) -> Result<ModuleDir, Error> {
    let (dir, root, in_tree) = locate(dir, kdir)?;
    check_kernel_version(&root)?;
    let config = read_config(&root)?;
    let makefile = ["Kbuild", "Makefile"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| Error::NoMakefile { dir: dir.clone() })?;
    let text = std::fs::read_to_string(&makefile).map_err(|source| Error::Io {
        path: makefile.clone(),
        source,
    })?;
    let env = make_env(config, &root, &dir, in_tree);
    let ev = makefile::evaluate(&text, &env);
    let mut notes: Vec<String> = ev
        .notes
        .iter()
        .map(|(l, n)| format!("{}:{l}: {n}", makefile.display()))
        .collect();

    let skipped = skipped(&ev);
    let mut modules = Vec::new();
    let mut seen = BTreeSet::new();
    for word in ev.words("obj-m") {
        let Some(stem) = word.strip_suffix(".o") else {
            if word.ends_with('/') {
                notes.push(format!(
                    "{}: subdirectory {word} is a module directory of its own; not followed",
                    makefile.display()
                ));
            }
            continue;
        };
        if !seen.insert(stem.to_string()) {
            continue;
        }
        let at = Where {
            dir: &dir,
            root: &root,
            in_tree,
            makefile: &makefile,
        };
        modules.push(module_spec(&ev, &at, stem, &word, &mut notes));
    }
    if modules.is_empty() {
        let skipped_text = if skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; {}",
                skipped
                    .iter()
                    .map(|(m, why)| format!("{m}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        return Err(Error::NoModules {
            makefile,
            skipped: skipped_text,
        });
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ModuleDir {
        root,
        dir,
        in_tree,
        makefile,
        modules,
        skipped,
        notes,
    })
}

/// The module directory, absolute, and the kernel tree it is built
/// against: `kdir` when given (an external module unless `dir` is inside
/// it), else the tree `dir` is in.
fn locate(dir: &Path, kdir: Option<&Path>) -> Result<(PathBuf, PathBuf, bool), Error> {
    let dir = std::path::absolute(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir = cmd::normalize(&dir);
    let (root, in_tree) = match kdir {
        Some(k) => {
            let k = cmd::normalize(&std::path::absolute(k).map_err(|source| Error::Io {
                path: k.to_path_buf(),
                source,
            })?);
            if !k.join(".config").exists() {
                return Err(Error::BadKdir { kdir: k });
            }
            let inside = dir.starts_with(&k);
            (k, inside)
        }
        None => (find_tree_root(&dir)?, true),
    };
    Ok((dir, root, in_tree))
}

/// The variables the directory's makefile is evaluated with: the
/// configuration, and what Kbuild sets.
fn make_env(
    config: BTreeMap<String, String>,
    root: &Path,
    dir: &Path,
    in_tree: bool,
) -> BTreeMap<String, String> {
    let mut env = config;
    let rel = if in_tree {
        dir.strip_prefix(root).unwrap_or(dir).display().to_string()
    } else {
        dir.display().to_string()
    };
    env.insert("src".into(), rel.clone());
    env.insert("obj".into(), rel.clone());
    env.insert("srctree".into(), root.display().to_string());
    env.insert("objtree".into(), root.display().to_string());
    if let Ok(r) = std::fs::read_to_string(root.join("include/config/kernel.release")) {
        env.insert("KERNELRELEASE".into(), r.trim().to_string());
    } else {
        env.insert("KERNELRELEASE".into(), "unknown".into());
    }
    if !in_tree {
        env.insert("M".into(), dir.display().to_string());
    }
    env
}

/// The objects the makefile names that this configuration does not build
/// as modules, with why.
fn skipped(ev: &makefile::Evaluated) -> Vec<(String, String)> {
    let mut skipped = Vec::new();
    for (var, words) in ev.with_prefix("obj-") {
        let why = match var {
            "obj-m" => continue,
            "obj-y" => "built into the kernel in this configuration, not a module",
            "obj-" | "obj-n" => "not enabled in this configuration",
            _ => continue,
        };
        for w in words.iter().filter(|w| w.ends_with(".o")) {
            skipped.push((w.trim_end_matches(".o").to_string(), why.to_string()));
        }
    }
    skipped.sort();
    skipped.dedup();

    skipped
}

/// Where a module directory is, for [`module_spec`].
struct Where<'a> {
    dir: &'a Path,
    root: &'a Path,
    in_tree: bool,
    makefile: &'a Path,
}

/// Module `stem` (`obj-m += word`): its objects (Kbuild's `.mod` list when
/// it was built, else the makefile's) and their C sources.
fn module_spec(
    ev: &makefile::Evaluated,
    at: &Where<'_>,
    stem: &str,
    word: &str,
    notes: &mut Vec<String>,
) -> ModuleSpec {
    let (dir, root, in_tree, makefile) = (at.dir, at.root, at.in_tree, at.makefile);
    let mut objs: Vec<String> = ["-y", "-objs", "-m"]
        .iter()
        .flat_map(|suf| ev.words(&format!("{stem}{suf}")))
        .collect();
    if objs.is_empty() {
        objs.push(word.to_string());
    }
    let mut dedup = BTreeSet::new();
    objs.retain(|o| dedup.insert(o.clone()));
    let from_mod = read_mod_file(dir, root, stem, in_tree);
    if let Some(built) = &from_mod {
        let listed: BTreeSet<PathBuf> = objs.iter().map(|o| dir.join(o)).collect();
        let built_set: BTreeSet<PathBuf> = built.iter().cloned().collect();
        if listed != built_set {
            notes.push(format!(
                "{}: the Makefile evaluates to other objects for {stem} than Kbuild built \
                 ({stem}.mod); using Kbuild's list",
                makefile.display()
            ));
        }
    }
    let objects: Vec<PathBuf> = match from_mod {
        Some(b) => b,
        None => objs.iter().map(|o| dir.join(o)).collect(),
    };
    let mut sources = Vec::new();
    for object in objects {
        let c = object.with_extension("c");
        if !c.exists() {
            let kind = if object.with_extension("S").exists() {
                "an assembly source"
            } else {
                "no C source"
            };
            notes.push(format!(
                "{}: {} has {kind}; its globals are not analysed from source",
                stem,
                object.display()
            ));
            continue;
        }
        sources.push(Source {
            path: c,
            object,
            command: None,
        });
    }
    ModuleSpec {
        name: stem.to_string(),
        modname: stem.replace('-', "_"),
        sources,
    }
}

impl ModuleDir {
    /// The command that builds this directory with Kbuild.
    pub fn make_command(&self) -> String {
        if self.in_tree {
            let rel = self.dir.strip_prefix(&self.root).unwrap_or(&self.dir);
            format!("make -C {} {}/", self.root.display(), rel.display())
        } else {
            format!("make -C {} M={}", self.root.display(), self.dir.display())
        }
    }

    /// Reads Kbuild's saved command of one source (which may belong to
    /// this directory or not; the others' need not exist).
    pub fn load_command(&self, s: &Source) -> Result<CompileCommand, Error> {
        let cmd_file = s.cmd_file();
        if !cmd_file.exists() {
            return Err(Error::NotBuilt {
                dir: self.dir.clone(),
                missing: s
                    .object
                    .strip_prefix(&self.dir)
                    .unwrap_or(&s.object)
                    .display()
                    .to_string(),
                make: self.make_command(),
            });
        }
        cmd::read_cmd_file(&cmd_file, &self.root).map_err(|reason| Error::BadCmdFile {
            cmd_file: cmd_file.clone(),
            reason,
        })
    }

    /// Reads Kbuild's saved command of every source. Fails, naming every
    /// object without one, when the directory has not been built.
    pub fn load_commands(&mut self) -> Result<(), Error> {
        let mut missing = Vec::new();
        for m in &mut self.modules {
            for s in &mut m.sources {
                let cmd_file = s.cmd_file();
                if !cmd_file.exists() {
                    missing.push(
                        s.object
                            .strip_prefix(&self.dir)
                            .unwrap_or(&s.object)
                            .display()
                            .to_string(),
                    );
                    continue;
                }
                let c = cmd::read_cmd_file(&cmd_file, &self.root).map_err(|reason| {
                    Error::BadCmdFile {
                        cmd_file: cmd_file.clone(),
                        reason,
                    }
                })?;
                s.command = Some(c);
            }
        }
        if !missing.is_empty() {
            return Err(Error::NotBuilt {
                dir: self.dir.clone(),
                missing: missing.join(", "),
                make: self.make_command(),
            });
        }
        Ok(())
    }
}

/// The nearest directory at or above `dir` that is a configured kernel tree.
fn find_tree_root(dir: &Path) -> Result<PathBuf, Error> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.join(".config").is_file()
            && d.join("Kconfig").is_file()
            && d.join("include/linux/module.h").is_file()
        {
            return Ok(d.to_path_buf());
        }
        cur = d.parent();
    }
    Err(Error::NoKernelTree {
        dir: dir.to_path_buf(),
    })
}

/// `.config` as a map `CONFIG_X` -> value (`y`, `m`, or the value with
/// quotes removed). Unset options are absent.
pub fn read_config(root: &Path) -> Result<BTreeMap<String, String>, Error> {
    let path = root.join(".config");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect())
}

/// The objects Kbuild linked into `<stem>.ko`, from `<stem>.mod`.
fn read_mod_file(dir: &Path, root: &Path, stem: &str, in_tree: bool) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(dir.join(format!("{stem}.mod"))).ok()?;
    let objs: Vec<PathBuf> = text
        .split_whitespace()
        .map(|w| {
            let p = Path::new(w);
            if p.is_absolute() {
                p.to_path_buf()
            } else if in_tree {
                root.join(p)
            } else {
                dir.join(p)
            }
        })
        .map(|p| cmd::normalize(&p))
        .collect();
    (!objs.is_empty()).then_some(objs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake kernel build directory and a module directory outside it.
    fn kdir(release: Option<&str>, makefile: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let k = tmp.path().join("kdir");
        std::fs::create_dir_all(k.join("include/config")).unwrap();
        std::fs::write(k.join(".config"), "CONFIG_MODULES=y\n").unwrap();
        std::fs::write(k.join("Makefile"), makefile).unwrap();
        if let Some(r) = release {
            std::fs::write(k.join("include/config/kernel.release"), format!("{r}\n")).unwrap();
        }
        let m = tmp.path().join("mod");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("Kbuild"), "obj-m := a.o\n").unwrap();
        std::fs::write(m.join("a.c"), "int a;\n").unwrap();
        (tmp, k, m)
    }

    #[test]
    fn kernels_other_than_6_12_are_refused_with_what_to_do() {
        let (_t, k, m) = kdir(Some("6.1.0-18-amd64"), "");
        let e = discover(&m, Some(&k)).unwrap_err();
        assert!(matches!(&e, Error::WrongKernel { release, .. } if release == "6.1.0-18-amd64"));
        let text = e.to_string();
        assert!(text.contains("supports Linux 6.12 only"), "{text}");
        assert!(text.contains("--kdir"), "{text}");
        // 6.120 is not 6.12.
        let (_t, k, m) = kdir(Some("6.120.1"), "");
        assert!(matches!(
            discover(&m, Some(&k)),
            Err(Error::WrongKernel { .. })
        ));
        // Without kernel.release, the Makefile says.
        let (_t, k, m) = kdir(None, "VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 2\n");
        assert!(matches!(
            discover(&m, Some(&k)),
            Err(Error::WrongKernel { release, .. }) if release == "6.13.2"
        ));
    }

    #[test]
    fn linux_6_12_releases_pass() {
        for r in ["6.12.117+deb12-amd64", "6.12.117+", "6.12.0"] {
            let (_t, k, m) = kdir(Some(r), "");
            let md = discover(&m, Some(&k)).unwrap();
            assert_eq!(md.modules.len(), 1);
        }
        let (_t, k, m) = kdir(None, "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n");
        assert!(discover(&m, Some(&k)).is_ok());
    }
}
