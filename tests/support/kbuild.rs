//! Building modules with Kbuild, each in its own temporary directory
//! (tests run in parallel; nothing is ever built inside the checkout).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{repo_root, DEBIAN_HEADERS};

/// A module built in a temporary directory, removed on drop.
pub struct Built {
    pub dir: tempfile::TempDir,
    /// The `.ko`.
    pub ko: PathBuf,
}

/// Module sources: C files, headers, Kbuild files (no build products).
fn is_source(name: &str) -> bool {
    name.ends_with(".c") && !name.ends_with(".mod.c")
        || name.ends_with(".h")
        || name == "Kbuild"
        || name == "Makefile"
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let name = e.file_name();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else if ty.is_file() && is_source(&name.to_string_lossy()) {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// Copies the module sources in `src` (relative to the checkout) to a
/// temporary directory and builds `<module>.ko` there against `headers`,
/// with `<linux/modswap.h>` from the checkout's `loader/include` and the
/// extra make arguments `make_args`. Fails the
/// test with the build log if the build fails or prints a warning.
pub fn build_with(headers: &Path, src: &str, module: &str, make_args: &[String]) -> Built {
    let dir = tempfile::Builder::new()
        .prefix("modswap-kbuild-")
        .tempdir()
        .unwrap();
    let from = repo_root().join(src);
    copy_dir(&from, dir.path());
    let out = Command::new("make")
        .arg("-C")
        .arg(headers)
        .arg(format!("M={}", dir.path().display()))
        .arg(format!(
            "MODSWAP_INCLUDE={}",
            repo_root().join("loader/include").display()
        ))
        .args(make_args)
        .output()
        .expect("make runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "building {src} failed:\n{log}");
    assert!(
        !log.contains("warning:") && !log.contains("WARNING:"),
        "building {src} printed warnings:\n{log}"
    );
    let ko = dir.path().join(format!("{module}.ko"));
    assert!(ko.exists(), "{} was not built:\n{log}", ko.display());
    Built { dir, ko }
}

/// [`build_with`] Debian's 6.12 headers.
pub fn build(src: &str, module: &str) -> Built {
    build_with(Path::new(DEBIAN_HEADERS), src, module, &[])
}
