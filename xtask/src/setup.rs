//! `cargo xtask setup`: install what the project needs, idempotently.
//!
//! Debian packages come from `xtask/debian-packages.txt`; only the missing
//! ones are installed (one `apt-get update` first, since a fresh machine's
//! lists may not know bookworm-security's 6.12 packages). Rust crates are
//! fetched with `cargo fetch --locked`.

use crate::paths;
use crate::util::{run, Cmd};
use anyhow::{bail, Context, Result};
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Package {
    name: String,
    version: Option<String>,
}

fn packages() -> Result<Vec<Package>> {
    let path = paths::repo_root().join("xtask/debian-packages.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((n, v)) => Package {
                name: n.to_string(),
                version: Some(v.to_string()),
            },
            None => Package {
                name: l.to_string(),
                version: None,
            },
        })
        .collect())
}

/// Is `pkg` installed (at the pinned version, when one is pinned)?
fn installed(pkg: &Package) -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}\t${Version}", &pkg.name])
        .output();
    let Ok(out) = out else { return false };
    if !out.status.success() {
        return false;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let Some((status, version)) = text.split_once('\t') else {
        return false;
    };
    status.ends_with(" installed") && pkg.version.as_deref().is_none_or(|v| v == version)
}

fn privileged(program: &str) -> Cmd {
    // SAFETY-free check of the effective uid through `id -u`.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        Cmd::new(program)
    } else {
        Cmd::new("sudo").arg("-n").arg(program)
    }
}

pub fn debian_packages() -> Result<()> {
    let wanted = packages()?;
    let missing: Vec<&Package> = wanted.iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("setup: all {} Debian packages present", wanted.len());
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|p| match &p.version {
            Some(v) => format!("{}={}", p.name, v),
            None => p.name.clone(),
        })
        .collect();
    eprintln!("setup: installing {}", names.join(" "));
    run(privileged("apt-get").args(["update", "-q"]))?;
    run(privileged("env")
        .args([
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-q",
        ])
        .args(["--no-install-recommends"])
        .args(&names))?;
    let still: Vec<&str> = wanted
        .iter()
        .filter(|p| !installed(p))
        .map(|p| p.name.as_str())
        .collect();
    if !still.is_empty() {
        bail!(
            "setup: packages still missing after apt-get install: {}",
            still.join(" ")
        );
    }
    Ok(())
}

pub fn rust_crates() -> Result<()> {
    run(Cmd::new(env!("CARGO"))
        .arg("fetch")
        .arg("--locked")
        .current_dir(paths::repo_root()))
}

pub fn all() -> Result<()> {
    debian_packages()?;
    rust_crates()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_parses_and_pins_the_kernel_source() {
        let pkgs = packages().unwrap();
        let src = pkgs.iter().find(|p| p.name == "linux-source-6.12").unwrap();
        assert_eq!(src.version.as_deref(), Some(paths::KERNEL_SOURCE_DEB));
        assert!(pkgs.iter().any(|p| p.name == "libclang-dev"));
        assert!(pkgs.iter().all(|p| !p.name.contains(' ')));
    }
}
