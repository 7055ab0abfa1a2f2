//! The two versions: where their sources are, how they are compiled, and
//! their IR.
//!
//! The new version is a built module directory: its Kbuild commands
//! (`.<obj>.cmd`) give the exact flags. The old version is a directory or a
//! git revision of the repository holding the new one (its module directory
//! is exported with `git archive` into a temporary directory). It usually
//! has no build of its own, so it is parsed with the new version's flags,
//! by this rule:
//!
//! [`modswap_kbuild::ModuleDir::derive_commands`] (a C file in both
//! versions gets the new version's command, moved to the old directory; a
//! C file only the old version has gets the command of the first C file of
//! its module, with a note in the handler's header).
//!
//! Include paths are never guessed: the kernel's come from the new
//! version's Kbuild command, the module's own are moved with the directory.
//! An old version's own `.cmd` files are ignored (they may hold paths of
//! wherever it was built).

use crate::error::{Error, Result, Side};
use modswap_ir::Program;
use modswap_kbuild::{self as kbuild, ModuleDir};
use modswap_source as source;
use modswap_util::Fnv64;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to compare.
#[derive(Debug, Clone)]
pub struct Request {
    /// The old version: a directory, or a git revision (`HEAD~1`, a tag, a
    /// commit) of the repository that holds `new`.
    pub old: String,
    /// The new version's module directory (built with Kbuild).
    pub new: PathBuf,
    /// The kernel build or headers directory, for external modules.
    pub kdir: Option<PathBuf>,
    /// The module, when the directory makes several.
    pub module: Option<String>,
    /// libclang threads.
    pub jobs: usize,
}

/// How a version is identified in the handler's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionId {
    /// `v1`, `HEAD~1`: the directory's name or the revision as given.
    pub label: String,
    /// `directory; sources fnv1a64:...` or `git commit <sha>; sources ...`.
    pub detail: String,
}

/// One version, parsed.
#[derive(Debug)]
pub struct Version {
    pub id: VersionId,
    /// The module directory (only the chosen module is kept in `modules`).
    pub dir: ModuleDir,
    pub program: Program,
    /// The temporary checkout of a git revision; removed on drop.
    _checkout: Option<tempfile::TempDir>,
}

/// The two versions of one module.
#[derive(Debug)]
pub struct Pair {
    /// The module's Makefile stem.
    pub module: String,
    pub old: Version,
    pub new: Version,
    /// Things the reader of the handler should know (how the old version
    /// was compiled, ...), sorted.
    pub notes: Vec<String>,
}

/// Loads and parses both versions.
pub fn load(req: &Request) -> Result<Pair> {
    if !req.new.is_dir() {
        return Err(Error::NewMissing {
            path: req.new.clone(),
        });
    }
    let mut new_dir =
        kbuild::discover(&req.new, req.kdir.as_deref()).map_err(|cause| Error::Kbuild {
            side: Side::New,
            cause,
        })?;
    let module = choose_module(&new_dir, req.module.as_deref())?;
    new_dir.modules.retain(|m| m.name == module);
    new_dir.load_commands().map_err(|cause| Error::Kbuild {
        side: Side::New,
        cause,
    })?;
    hide_handlers(&mut new_dir);

    let (old_path, checkout, git_detail) = resolve_old(&req.old, &new_dir.dir)?;
    let mut old_dir =
        kbuild::discover(&old_path, Some(&new_dir.root)).map_err(|cause| Error::Kbuild {
            side: Side::Old,
            cause,
        })?;
    if !old_dir.modules.iter().any(|m| m.name == module) {
        return Err(Error::Unrelated {
            reason: format!(
                "the old version ({}) makes {}, not module {module}",
                req.old,
                list_or_nothing(old_dir.modules.iter().map(|m| m.name.clone()))
            ),
        });
    }
    old_dir.modules.retain(|m| m.name == module);
    let mut notes = old_dir.derive_commands(&new_dir);
    hide_handlers(&mut old_dir);

    let opts = source::Options {
        jobs: req.jobs.max(1),
        ..source::Options::default()
    };
    let new_program = source::parse(&new_dir, opts).map_err(|cause| Error::Parse {
        side: Side::New,
        cause,
    })?;
    let old_program = source::parse(&old_dir, opts).map_err(|cause| Error::Parse {
        side: Side::Old,
        cause,
    })?;
    check_related(&old_program, &new_program, &module)?;

    let old_label = if git_detail.is_some() {
        req.old.clone()
    } else {
        dir_label(&old_dir.dir)
    };
    let old_digest = digest(&old_dir.dir)?;
    let old_detail = match &git_detail {
        Some(sha) => format!("git commit {sha}; sources fnv1a64:{old_digest}"),
        None => format!("directory; sources fnv1a64:{old_digest}"),
    };
    let new_id = VersionId {
        label: dir_label(&new_dir.dir),
        detail: format!("directory; sources fnv1a64:{}", digest(&new_dir.dir)?),
    };
    notes.sort();
    notes.dedup();
    Ok(Pair {
        module,
        old: Version {
            id: VersionId {
                label: old_label,
                detail: old_detail,
            },
            dir: old_dir,
            program: old_program,
            _checkout: checkout,
        },
        new: Version {
            id: new_id,
            dir: new_dir,
            program: new_program,
            _checkout: None,
        },
        notes,
    })
}

fn list_or_nothing(names: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = names.collect();
    if v.is_empty() {
        "no modules".into()
    } else {
        format!("modules {}", v.join(", "))
    }
}

fn dir_label(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

fn choose_module(dir: &ModuleDir, wanted: Option<&str>) -> Result<String> {
    let available: Vec<String> = dir.modules.iter().map(|m| m.name.clone()).collect();
    match wanted {
        Some(w) => dir
            .modules
            .iter()
            .find(|m| m.name == w || m.modname == w)
            .map(|m| m.name.clone())
            .ok_or_else(|| Error::NoSuchModule {
                side: Side::New,
                dir: dir.dir.clone(),
                module: w.to_string(),
                available,
            }),
        None if available.len() == 1 => Ok(available[0].clone()),
        None => Err(Error::ChooseModule {
            dir: dir.dir.clone(),
            available,
        }),
    }
}

/// The old version's directory: `spec` itself when it is a directory,
/// else a checkout of revision `spec` of the new version's git repository.
/// Returns the directory, the checkout to keep alive, and the commit.
fn resolve_old(
    spec: &str,
    new_dir: &Path,
) -> Result<(PathBuf, Option<tempfile::TempDir>, Option<String>)> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok((p.to_path_buf(), None, None));
    }
    let missing = |reason: String| Error::OldMissing {
        spec: spec.to_string(),
        reason,
    };
    if spec.is_empty() || spec.starts_with('-') {
        return Err(missing("not a directory nor a git revision".into()));
    }
    let git = |args: &[&str]| -> std::result::Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(new_dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    };
    let not_dir = if p.exists() {
        "not a directory"
    } else {
        "no such directory"
    };
    let top = git(&["rev-parse", "--show-toplevel"]).map_err(|e| {
        missing(format!(
            "{not_dir}, and {} is not in a git repository to take a revision from ({e})",
            new_dir.display()
        ))
    })?;
    let prefix = git(&["rev-parse", "--show-prefix"]).map_err(missing)?;
    let sha = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{spec}^{{commit}}"),
    ])
    .map_err(|_| {
        missing(format!(
            "{not_dir}, and not a revision of the git repository {top}"
        ))
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("modswap-old-")
        .tempdir()
        .map_err(|cause| Error::Io {
            path: std::env::temp_dir(),
            cause,
        })?;
    let prefix_trimmed = prefix.trim_end_matches('/');
    let mut archive = Command::new("git");
    archive
        .arg("-C")
        .arg(&top)
        .args(["archive", "--format=tar", &sha]);
    if !prefix_trimmed.is_empty() {
        archive.args(["--", prefix_trimmed]);
    }
    let mut child = archive
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| missing(format!("cannot run git archive: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(tmp.path())
        .stdin(stdout)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| missing(format!("cannot run tar: {e}")))?;
    let git_out = child
        .wait_with_output()
        .map_err(|e| missing(format!("git archive: {e}")))?;
    if !git_out.status.success() {
        return Err(missing(format!(
            "{}/ does not exist at revision {sha} of {top}: {}",
            prefix_trimmed,
            String::from_utf8_lossy(&git_out.stderr).trim()
        )));
    }
    if !tar.status.success() {
        return Err(missing(format!(
            "cannot unpack revision {sha}: {}",
            String::from_utf8_lossy(&tar.stderr).trim()
        )));
    }
    let dir = tmp.path().join(prefix_trimmed);
    if !dir.is_dir() {
        return Err(missing(format!(
            "{prefix_trimmed}/ does not exist at revision {sha} of {top}"
        )));
    }
    Ok((dir, Some(tmp), Some(sha)))
}

/// Parses the versions without their handlers: a generated handler is
/// included at the end of the units it serves, and is wrapped in
/// `#ifndef MODSWAP_NO_HANDLER` so that the IR is the module's own code
/// (and so that unfilled TODOs do not stop the parse).
fn hide_handlers(dir: &mut ModuleDir) {
    for m in &mut dir.modules {
        for s in &mut m.sources {
            if let Some(c) = &s.command {
                s.command = Some(c.with_define(crate::NO_HANDLER_MACRO, "1"));
            }
        }
    }
}

/// Two versions of one module share at least one global or one function.
fn check_related(old: &Program, new: &Program, module: &str) -> Result<()> {
    let (Some(om), Some(nm)) = (old.module(module), new.module(module)) else {
        return Err(Error::Unrelated {
            reason: format!("module {module} is missing from one version"),
        });
    };
    let shares_global = nm.globals().any(|g| om.global(&g.key).is_some());
    let shares_function = nm.units.iter().any(|u| {
        u.functions
            .iter()
            .filter(|f| f.defined)
            .any(|f| om.defines_function(&f.name))
    });
    if shares_global || shares_function {
        return Ok(());
    }
    Err(Error::Unrelated {
        reason: format!(
            "the two versions of module {module} have no global variable and no function in \
             common (old: {}; new: {})",
            old.dir, new.dir
        ),
    })
}

/// A digest of a module directory's sources (C files, headers, Kbuild
/// files, recursively; hidden files and generated handlers skipped),
/// independent of where the directory is.
fn digest(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut h = Fnv64::new();
    for rel in &files {
        let path = dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|cause| Error::Io { path, cause })?;
        h.write(rel.as_bytes());
        h.write(&[0]);
        h.write(&(bytes.len() as u64).to_le_bytes());
        h.write(&bytes);
    }
    Ok(format!("{:016x}", h.finish()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|cause| Error::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    for e in rd {
        let e = e.map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let ft = e.file_type().map_err(|cause| Error::Io {
            path: path.clone(),
            cause,
        })?;
        if ft.is_dir() {
            collect(root, &path, out)?;
        } else if ft.is_file()
            && (name.ends_with(".c")
                || name.ends_with(".h")
                || name == "Kbuild"
                || name == "Makefile")
            && !name.ends_with(".mod.c")
            && !name.ends_with(crate::HANDLER_SUFFIX)
        {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.display().to_string());
        }
    }
    Ok(())
}
