//! Shared by the annotate tests: fixture modules built with Kbuild.
#![allow(dead_code)] // each test binary uses a part

use modswap_tests::{repo_root, DEBIAN_HEADERS};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies fixture `name` (tests/fixtures/annotate/<name>) to `<tmp>/<name>`
/// and builds it against Debian's headers; fails on warnings.
pub fn build_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(
        &repo_root().join("tests/fixtures/annotate").join(name),
        &dir,
    );
    make(&dir);
    (tmp, dir)
}

/// Builds the external module in `dir` against Debian's headers, with
/// <linux/modswap.h> from the checkout; fails on errors and warnings.
pub fn make(dir: &Path) {
    let out = Command::new("make")
        .args(["-s", "-C", DEBIAN_HEADERS])
        .arg(format!("M={}", dir.display()))
        .arg(format!(
            "KCFLAGS=-I{}",
            repo_root().join("loader/include").display()
        ))
        .arg("modules")
        .output()
        .expect("make runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "building {} failed:\n{stderr}",
        dir.display()
    );
    assert!(
        !stderr.contains("warning:"),
        "{} builds with warnings:\n{stderr}",
        dir.display()
    );
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub fn kdir() -> &'static Path {
    Path::new(DEBIAN_HEADERS)
}
