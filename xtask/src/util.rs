//! Running commands with their command line in every error.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A command line that prints itself before it runs and names itself when it fails.
pub struct Cmd {
    inner: Command,
    shown: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let shown = program.as_ref().to_string_lossy().into_owned();
        Cmd {
            inner: Command::new(program),
            shown,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.shown.push(' ');
        self.shown.push_str(&a.as_ref().to_string_lossy());
        self.inner.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.inner.env(k, v);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.inner.current_dir(dir);
        self
    }

    /// Standard input from /dev/null: a prompt fails instead of waiting.
    pub fn stdin_null(mut self) -> Cmd {
        self.inner.stdin(Stdio::null());
        self
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn into_inner(self) -> Command {
        self.inner
    }
}

/// Runs `cmd` with inherited stdio; fails unless it exits 0.
pub fn run(cmd: Cmd) -> Result<()> {
    let shown = cmd.shown.clone();
    eprintln!("+ {shown}");
    let status = cmd
        .into_inner()
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed: {status}");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its output; fails unless it exits 0.
pub fn output(cmd: Cmd) -> Result<Output> {
    let shown = cmd.shown.clone();
    let out = cmd
        .into_inner()
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent")?;
    std::fs::create_dir_all(dir)?;
    modswap_util::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The median of `v` (the upper one of an even count); NaN when empty, so
/// that a missing figure prints as such.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// `part` as a percentage of `whole`; NaN when `whole` is zero.
pub fn pct(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        f64::NAN
    } else {
        100.0 * part / whole
    }
}

/// Where a QEMU harness keeps what it builds for one kernel variant:
/// `<cache>/<harness>/<hotswap|stock>`.
pub fn work_dir(harness: &str, variant: crate::kernel::Variant) -> std::path::PathBuf {
    let name = match variant {
        crate::kernel::Variant::Hotswap => "hotswap",
        crate::kernel::Variant::Stock => "stock",
        crate::kernel::Variant::Distro => "distro",
    };
    crate::paths::cache_dir().join(harness).join(name)
}

/// Copies the sources of module directory `from` (its C files but Kbuild's
/// generated `.mod.c`, headers, `Makefile`, `Kconfig`) into `to`; returns
/// the names copied.
pub fn copy_module_sources(from: &Path, to: &Path) -> Result<Vec<String>> {
    let mut copied = Vec::new();
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let keep = (name.ends_with(".c") && !name.ends_with(".mod.c"))
            || name.ends_with(".h")
            || name == "Makefile"
            || name == "Kconfig";
        if keep && p.is_file() {
            std::fs::copy(&p, to.join(&name))?;
            copied.push(name);
        }
    }
    copied.sort();
    Ok(copied)
}
