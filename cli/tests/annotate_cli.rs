//! `modswap annotate` as a user runs it: exit codes, output channels,
//! errors with file and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KDIR: &str = "/usr/src/linux-headers-6.12.117+deb12-amd64";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn modswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modswap"))
        .args(args)
        .output()
        .unwrap()
}

/// The `pair` fixture, copied and built.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pair");
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(repo().join("tests/fixtures/annotate/pair")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    build(&dir);
    (tmp, dir)
}

fn build(dir: &Path) {
    let out = Command::new("make")
        .args(["-s", "-C", KDIR])
        .arg(format!("M={}", dir.display()))
        .arg(format!(
            "KCFLAGS=-I{}",
            repo().join("loader/include").display()
        ))
        .arg("modules")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_patch_rewrite_check() {
    let (_tmp, dir) = fixture();
    let d = dir.to_str().unwrap();
    // Stale before the first run: exit 1, the file named on stderr.
    let out = modswap(&["annotate", d, "--kdir", KDIR, "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pair/user.c"));
    // --patch prints the diff and writes nothing.
    let before = std::fs::read_to_string(dir.join("user.c")).unwrap();
    let out = modswap(&["annotate", d, "--kdir", KDIR, "--patch"]);
    assert_eq!(out.status.code(), Some(0));
    let patch = String::from_utf8(out.stdout).unwrap();
    assert!(
        patch.contains(
            "+static const struct inode_operations puser_dir_iops __static_new(puser_dir_iops) = {"
        ),
        "{patch}"
    );
    assert!(patch.contains("+#include <linux/modswap.h>"));
    assert_eq!(std::fs::read_to_string(dir.join("user.c")).unwrap(), before);
    // The rewrite, with the JSON report.
    let out = modswap(&["annotate", d, "--kdir", KDIR, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let puser = report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "puser")
        .unwrap();
    let g = puser["globals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "puser_dir_iops")
        .unwrap();
    assert_eq!(g["class"], "static_new");
    assert_eq!(g["file"], "pair/user.c");
    assert_eq!(g["line"], 6);
    assert_eq!(g["evidence"][1]["file"], "pair/core.c");
    assert_eq!(g["marker"]["status"], "added");
    // Up to date now.
    build(&dir);
    let out = modswap(&["annotate", d, "--kdir", KDIR, "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn clang_errors_name_file_and_line_and_exit_2() {
    let (_tmp, dir) = fixture();
    // Break the source after Kbuild built it: the saved flags still apply.
    let user = dir.join("user.c");
    let text = std::fs::read_to_string(&user).unwrap();
    std::fs::write(
        &user,
        text.replace(
            "return pair_fill(inode, puser_setup);",
            "return pair_fill(inode, puser_setup)",
        ),
    )
    .unwrap();
    let out = modswap(&["annotate", dir.to_str().unwrap(), "--kdir", KDIR]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pair/user.c:18:"), "{err}");
    assert!(err.contains("puser"), "{err}");
    // Nothing was written.
    assert!(!std::fs::read_to_string(&user)
        .unwrap()
        .contains("__static_new"));
}

#[test]
fn unbuilt_directory_says_how_to_build_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pair");
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(repo().join("tests/fixtures/annotate/pair")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let out = modswap(&["annotate", dir.to_str().unwrap(), "--kdir", KDIR]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not built yet") && err.contains("make -C"),
        "{err}"
    );
}
