//! Running the real `modswap` binary.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::repo_root;

/// The `modswap` binary, built once per test process by the cargo that
/// runs the tests (cargo releases its build lock before running tests).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--package",
                "modswap-cli",
                "--bin",
                "modswap",
            ])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(repo_root())
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building modswap failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "modswap")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the modswap executable")
    })
}

/// What a `modswap` run did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal, e.g. a crash).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `modswap ARGS...`.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("modswap runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
