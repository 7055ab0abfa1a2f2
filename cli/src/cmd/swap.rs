//! `modswap swap NEW.ko [--format text|json]`: replace the loaded version
//! of a module by NEW, on the running hotswap kernel.
//!
//! Before it asks the kernel, it checks NEW against the loaded module: NEW
//! is hotswappable, a module of its name is loaded and was loaded
//! hotswappable, and NEW has the static sections that the loaded version
//! has (names, from `/sys/module/<m>/sections/`; the kernel compares
//! sizes, symbols and offsets itself). Then it calls `finit_module()` with
//! `MODULE_INIT_HOTSWAP` and prints the outcome with the swap's timings
//! from `/sys/module/<m>/hotswap/`; on `EBUSY`, the task and function that
//! kept the module busy (or the pending callback).
//!
//! Exit 0: swapped. Exit 1: not swapped (a check here or the kernel
//! refused; the loaded version runs on). Exit 2: NEW could not be read.
//!
//! JSON: `{ "schema": "modswap-swap/1", "module", "new", "swapped",
//! "problems": [..], "errno": null | { "code", "name" }, "busy": null |
//! "...", "timings_ns": { phase: ns } }`.

use anyhow::{Context, Result};
use modswap_elf::Object;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Format;

pub const SCHEMA: &str = "modswap-swap/1";

/// `finit_module()` flag of the loader series (`<uapi/linux/module.h>`):
/// replace the loaded module of the image's name.
pub const MODULE_INIT_HOTSWAP: u32 = 8;

/// The timings a swap records under `/sys/module/<m>/hotswap/`, in the
/// order the log line gives them.
const TIMINGS: &[&str] = &[
    "total_ns",
    "quiescence_ns",
    "resolution_ns",
    "relocation_ns",
    "relink_ns",
    "replace_ns",
    "stopped_ns",
];

#[derive(clap::Args)]
pub struct Args {
    /// The new version (.ko).
    pub new: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Only run the checks; do not swap.
    #[arg(long)]
    pub check: bool,
    /// sysfs root (for tests).
    #[arg(long, default_value = "/sys", hide = true)]
    pub sysfs: PathBuf,
}

/// Why NEW cannot replace the loaded module, found before the kernel is
/// asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoName,
    NotHotswappable,
    NotLoaded(String),
    LoadedNotHotswappable(String),
    MissingStatic(String),
    ExtraStatic(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoName => write!(f, "the image names no module"),
            Problem::NotHotswappable => {
                write!(f, "the image is not hotswappable (no .modswap.info)")
            }
            Problem::NotLoaded(m) => write!(f, "no module {m} is loaded"),
            Problem::LoadedNotHotswappable(m) => {
                write!(f, "the loaded {m} was not loaded hotswappable")
            }
            Problem::MissingStatic(s) => {
                write!(
                    f,
                    "the loaded version has static section {s}, the image does not"
                )
            }
            Problem::ExtraStatic(s) => {
                write!(
                    f,
                    "the image has static section {s}, the loaded version does not"
                )
            }
        }
    }
}

/// The checks, in order; each returns what it found.
pub fn check(new: &Object, sysfs: &Path) -> (Option<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some(name) = new.module.name.clone() else {
        return (None, vec![Problem::NoName]);
    };
    if !new.module.hotswappable {
        problems.push(Problem::NotHotswappable);
    }
    let dir = sysfs.join("module").join(&name);
    if !dir.join("initstate").exists() {
        problems.push(Problem::NotLoaded(name.clone()));
        return (Some(name), problems);
    }
    let hotswappable = std::fs::read_to_string(dir.join("hotswap/hotswappable"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    if !hotswappable {
        problems.push(Problem::LoadedNotHotswappable(name.clone()));
        return (Some(name), problems);
    }
    let is_static = |s: &str| s.starts_with(".static_old.") || s.starts_with(".static_new.");
    let loaded: std::collections::BTreeSet<String> = std::fs::read_dir(dir.join("sections"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|s| is_static(s))
        .collect();
    let image: std::collections::BTreeSet<String> = new
        .sections
        .iter()
        .map(|s| s.name.clone())
        .filter(|s| is_static(s))
        .collect();
    problems.extend(
        loaded
            .difference(&image)
            .cloned()
            .map(Problem::MissingStatic),
    );
    problems.extend(image.difference(&loaded).cloned().map(Problem::ExtraStatic));
    (Some(name), problems)
}

/// `finit_module(fd, "", MODULE_INIT_HOTSWAP)`: 0 or the errno.
fn finit_hotswap(path: &Path) -> Result<i32> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    // SAFETY: finit_module() takes a file descriptor that `file` keeps open
    // for the call, a NUL-terminated parameter string that lives as long as
    // the literal, and flags; it touches no memory of this process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            c"".as_ptr(),
            MODULE_INIT_HOTSWAP,
        )
    };
    Ok(if ret == 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    })
}

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let new = Object::read(&args.new)?;
    let (name, problems) = check(&new, &args.sysfs);
    let mut outcome = Outcome {
        module: name.clone(),
        new: args.new.display().to_string(),
        problems,
        errno: None,
        busy: None,
        timings: BTreeMap::new(),
    };
    if outcome.problems.is_empty() && !args.check {
        let name = name.expect("checked");
        let hs = args.sysfs.join("module").join(&name).join("hotswap");
        let errno = finit_hotswap(&args.new)?;
        if errno == 0 {
            for t in TIMINGS.iter().chain(["tries", "users", "swaps"].iter()) {
                if let Some(v) = read_trim(&hs.join(t)).and_then(|v| v.parse().ok()) {
                    outcome.timings.insert(t.to_string(), v);
                }
            }
        } else {
            outcome.errno = Some(errno);
            if errno == libc::EBUSY {
                outcome.busy = read_trim(&hs.join("busy")).filter(|b| !b.is_empty());
            }
        }
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&outcome.json(args.check))? + "\n",
        Format::Text => outcome.text(args.check),
    };
    super::emit(&out)?;
    Ok(if outcome.problems.is_empty() && outcome.errno.is_none() {
        ExitCode::SUCCESS
    } else {
        super::exit_no()
    })
}

struct Outcome {
    module: Option<String>,
    new: String,
    problems: Vec<Problem>,
    errno: Option<i32>,
    busy: Option<String>,
    timings: BTreeMap<String, u64>,
}

fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

impl Outcome {
    fn json(&self, check_only: bool) -> serde_json::Value {
        json!({
            "schema": SCHEMA,
            "module": self.module,
            "new": self.new,
            "check_only": check_only,
            "swapped": !check_only && self.problems.is_empty() && self.errno.is_none(),
            "problems": self.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "errno": self.errno.map(|e| json!({ "code": e, "name": errno_name(e) })),
            "busy": self.busy,
            "timings_ns": self.timings,
        })
    }

    fn text(&self, check_only: bool) -> String {
        let m = self.module.as_deref().unwrap_or("?");
        let mut s = String::new();
        if !self.problems.is_empty() {
            let _ = writeln!(s, "{m}: {} cannot replace the loaded version:", self.new);
            for p in &self.problems {
                let _ = writeln!(s, "  {p}");
            }
        } else if check_only {
            let _ = writeln!(
                s,
                "{m}: {} passes the checks; not swapped (--check)",
                self.new
            );
        } else if let Some(e) = self.errno {
            let _ = writeln!(
                s,
                "{m}: the kernel refused the swap: {} (errno {e}); the loaded version runs on",
                errno_name(e)
            );
            if let Some(b) = &self.busy {
                let _ = writeln!(s, "  busy: {b}");
            }
            let _ = writeln!(s, "  the kernel log (dmesg) has the reason");
        } else {
            let _ = writeln!(s, "{m}: swapped to {}", self.new);
            for (k, v) in &self.timings {
                let _ = writeln!(s, "  {k:<14} {v}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modswap_elf::{Module, Section};

    fn section(name: &str) -> Section {
        Section {
            index: 1,
            name: name.to_string(),
            kind: "PROGBITS".to_string(),
            flags: "WA".to_string(),
            size: 8,
            align: 8,
            relocates: None,
        }
    }

    fn image(name: Option<&str>, hotswappable: bool, statics: &[&str]) -> Object {
        Object {
            module: Module {
                name: name.map(str::to_string),
                modinfo_name: name.map(str::to_string),
                this_module_name: name.map(str::to_string),
                hotswappable,
                modswap_abi: hotswappable.then_some(1),
            },
            modinfo: Vec::new(),
            sections: statics.iter().map(|s| section(s)).collect(),
            symbols: Vec::new(),
            relocations: Vec::new(),
            imports: Vec::new(),
            exports: Vec::new(),
            data: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A sysfs root with module `m` loaded, hotswappable or not, with
    /// these section files.
    fn sysfs(hotswappable: Option<bool>, sections: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let m = root.path().join("module/m");
        std::fs::create_dir_all(m.join("sections")).unwrap();
        std::fs::write(m.join("initstate"), "live\n").unwrap();
        if let Some(h) = hotswappable {
            std::fs::create_dir_all(m.join("hotswap")).unwrap();
            std::fs::write(
                m.join("hotswap/hotswappable"),
                if h { "1\n" } else { "0\n" },
            )
            .unwrap();
        }
        for s in sections {
            std::fs::write(m.join("sections").join(s), "0xffffffffa0000000\n").unwrap();
        }
        root
    }

    #[test]
    fn a_matching_image_passes() {
        let root = sysfs(Some(true), &[".text", ".static_old.x", ".static_new.y"]);
        let new = image(
            Some("m"),
            true,
            &[".text", ".static_old.x", ".static_new.y"],
        );
        assert_eq!(check(&new, root.path()), (Some("m".into()), vec![]));
    }

    #[test]
    fn every_problem_is_listed() {
        let root = sysfs(Some(true), &[".static_old.x", ".static_old.gone"]);
        let new = image(Some("m"), false, &[".static_old.x", ".static_new.added"]);
        assert_eq!(
            check(&new, root.path()).1,
            vec![
                Problem::NotHotswappable,
                Problem::MissingStatic(".static_old.gone".into()),
                Problem::ExtraStatic(".static_new.added".into()),
            ]
        );
    }

    #[test]
    fn the_loaded_module_must_be_there_and_hotswappable() {
        let root = sysfs(Some(false), &[]);
        let new = image(Some("m"), true, &[]);
        assert_eq!(
            check(&new, root.path()).1,
            vec![Problem::LoadedNotHotswappable("m".into())]
        );
        let plain = sysfs(None, &[]);
        assert_eq!(
            check(&new, plain.path()).1,
            vec![Problem::LoadedNotHotswappable("m".into())]
        );
        let other = image(Some("n"), true, &[]);
        assert_eq!(
            check(&other, root.path()).1,
            vec![Problem::NotLoaded("n".into())]
        );
        assert_eq!(
            check(&image(None, true, &[]), root.path()).1,
            vec![Problem::NoName]
        );
    }

    #[test]
    fn the_flag_is_the_one_the_loader_series_defines() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../loader/patches");
        let want = format!("+#define MODULE_INIT_HOTSWAP\t\t{MODULE_INIT_HOTSWAP}\n");
        let found = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .any(|p| p.contains(&want));
        assert!(found, "no patch in {} defines {want:?}", dir.display());
    }
}
