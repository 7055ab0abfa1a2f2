//! `cargo xtask kernel`: the Linux 6.12 trees the project builds itself.
//!
//! Two trees, each at a fixed path under the cache directory so that ccache
//! hits across runs:
//!
//! - `linux-6.12.117`: the *hotswap* tree. Debian's linux-source-6.12 with
//!   the loader patch series (`loader/patches/series`) applied, configured
//!   with `xtask/kernel/qemu.config` plus `loader/hotswap.config`, built
//!   in-tree (out-of-tree `M=` builds of modules need an in-tree build on 6.12).
//!   It is a git repository whose first commit is the unmodified source, so
//!   the series is re-applied with `git am` and only the files it touches
//!   change (incremental rebuilds).
//! - `linux-6.12.117-stock`: the same source and base config without the
//!   patches, for benchmarks that compare against the unpatched loader. It
//!   gets the debugging options of `loader/hotswap.config` too (all but the
//!   loader's own), so that the two kernels compare like with like.
//!
//! `cargo xtask kernel --check-series` builds the hotswap tree after each
//! patch of the series and once more with CONFIG_MODULE_HOTSWAP off, and
//! boots that kernel to check that modules load as without the series.

use crate::paths;
use crate::util::{output, run, write_atomic, Cmd};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// Patched with the loader series, CONFIG_MODULE_HOTSWAP=y.
    Hotswap,
    /// Unpatched, for comparisons.
    Stock,
    /// Patched, with Debian's own configuration reduced to the modules the
    /// tests load (the distro profile, see `distro.rs`).
    Distro,
}

pub struct Tree {
    pub variant: Variant,
    pub dir: PathBuf,
}

impl Tree {
    pub fn new(variant: Variant) -> Tree {
        let name = match variant {
            Variant::Hotswap => format!("linux-{}", paths::KERNEL_VERSION),
            Variant::Stock => format!("linux-{}-stock", paths::KERNEL_VERSION),
            Variant::Distro => format!("linux-{}-distro", paths::KERNEL_VERSION),
        };
        Tree {
            variant,
            dir: paths::cache_dir().join(name),
        }
    }

    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("arch/x86/boot/bzImage")
    }

    /// `make ARCH=x86_64 ...` in this tree, with ccache on PATH (so Kbuild's
    /// .cmd files still name plain `gcc`) and reproducible build stamps.
    pub fn make(&self) -> Cmd {
        let path = format!(
            "/usr/lib/ccache:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        Cmd::new("make")
            .arg("-C")
            .arg(&self.dir)
            .arg("ARCH=x86_64")
            .arg(format!("-j{}", jobs()))
            .env("PATH", path)
            .env("CCACHE_DIR", paths::ccache_dir())
            .env("CCACHE_MAXSIZE", "8G")
            .env("CCACHE_NOHASHDIR", "1")
            .env("KBUILD_BUILD_TIMESTAMP", "2026-01-01")
            .env("KBUILD_BUILD_USER", "modswap")
            .env("KBUILD_BUILD_HOST", "modswap")
    }

    pub(crate) fn stamp(&self, name: &str) -> PathBuf {
        self.dir.join(".modswap").join(name)
    }
}

pub fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Unpacks the source tarball into `tree.dir` (once), as a git repository
/// whose first commit is the unmodified source.
fn unpack(tree: &Tree) -> Result<()> {
    if tree.stamp("base-commit").exists() {
        return Ok(());
    }
    let tarball = Path::new(paths::SOURCE_TARBALL);
    if !tarball.exists() {
        bail!(
            "{} is missing: run `cargo xtask setup` (it installs linux-source-6.12)",
            tarball.display()
        );
    }
    let mut tmp = tree.dir.clone().into_os_string();
    tmp.push(".unpacking");
    let tmp = PathBuf::from(tmp);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    if tree.dir.exists() {
        std::fs::remove_dir_all(&tree.dir)?;
    }
    std::fs::create_dir_all(&tmp)?;
    eprintln!(
        "kernel: unpacking {} into {}",
        tarball.display(),
        tree.dir.display()
    );
    run(Cmd::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("--strip-components=1")
        .arg("-C")
        .arg(&tmp))?;
    let git = |args: &[&str]| {
        Cmd::new("git")
            .arg("-C")
            .arg(&tmp)
            .args([
                "-c",
                "user.name=modswap",
                "-c",
                "user.email=modswap@invalid",
            ])
            .args(["-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"])
            .args(args)
    };
    output(git(&["init", "-q"]))?;
    output(git(&["add", "-A", "-f", "."]))?;
    output(git(&[
        "commit",
        "-q",
        "-m",
        "Linux 6.12.117 (Debian linux-source-6.12 6.12.117-1~deb12u1)",
    ]))?;
    std::fs::rename(&tmp, &tree.dir)?;
    write_atomic(&tree.stamp("base-commit"), b"base\n")?;
    Ok(())
}

fn git(tree: &Tree) -> Cmd {
    Cmd::new("git")
        .arg("-C")
        .arg(&tree.dir)
        .args([
            "-c",
            "user.name=modswap",
            "-c",
            "user.email=modswap@invalid",
        ])
        .args(["-c", "commit.gpgsign=false"])
}

/// The loader series, in order, from `loader/patches/series`.
pub fn series() -> Result<Vec<PathBuf>> {
    let dir = paths::repo_root().join("loader/patches");
    let list = dir.join("series");
    if !list.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&list)?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| dir.join(l))
        .collect())
}

pub(crate) fn fingerprint(files: &[PathBuf]) -> Result<String> {
    // FNV-1a over names and contents: enough to notice a changed input.
    let mut h = modswap_util::Fnv64::new();
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        // The file's name, not its path: another checkout of the same
        // series must not make the tree rebuild.
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        h.write(name.as_bytes());
        h.write(&bytes);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// Brings the tree's source to base + series, touching only what differs.
fn apply_series(tree: &Tree) -> Result<()> {
    let patches = match tree.variant {
        Variant::Hotswap | Variant::Distro => series()?,
        Variant::Stock => Vec::new(),
    };
    let want = fingerprint(&patches)?;
    let stamp = tree.stamp("series");
    let clean = output(git(tree).args(["status", "--porcelain", "--untracked-files=no"]))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str())
        && clean.stdout.is_empty()
    {
        return Ok(());
    }
    apply(tree, &patches)?;
    write_atomic(&stamp, want.as_bytes())?;
    Ok(())
}

/// Resets the tree to its base commit and applies `patches` with `git am`.
fn apply(tree: &Tree, patches: &[PathBuf]) -> Result<()> {
    let _ = std::fs::remove_file(tree.stamp("series"));
    let base = output(git(tree).args(["rev-list", "--max-parents=0", "HEAD"]))?;
    let base = String::from_utf8_lossy(&base.stdout).trim().to_string();
    output(git(tree).args(["am", "--abort"])).ok();
    output(git(tree).args(["reset", "-q", "--hard", &base]))?;
    for p in patches {
        eprintln!(
            "kernel: applying {}",
            p.file_name().unwrap_or_default().to_string_lossy()
        );
        run(git(tree).args(["am", "-q", "--keep-cr"]).arg(p)).with_context(|| {
            format!(
                "patch {} does not apply to Linux {}",
                p.display(),
                paths::KERNEL_VERSION
            )
        })?;
    }
    Ok(())
}

/// The config fragments merged on top of tinyconfig for this variant.
pub fn fragments(variant: Variant) -> Vec<PathBuf> {
    let root = paths::repo_root();
    let mut v = vec![root.join("xtask/kernel/qemu.config")];
    let f = root.join("loader/hotswap.config");
    if f.exists() {
        match variant {
            Variant::Hotswap => v.push(f),
            Variant::Stock => v.push(paths::cache_dir().join("stock-debug.config")),
            Variant::Distro => {}
        }
    }
    v
}

/// `loader/hotswap.config` without the options of the loader itself, which
/// the stock tree does not have.
fn stock_fragment(hotswap: &str) -> String {
    hotswap
        .lines()
        .filter(|l| !l.contains("CONFIG_MODULE_HOTSWAP"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn write_stock_fragment() -> Result<()> {
    let f = paths::repo_root().join("loader/hotswap.config");
    if let Ok(text) = std::fs::read_to_string(&f) {
        let out = paths::cache_dir().join("stock-debug.config");
        let want = stock_fragment(&text);
        if std::fs::read_to_string(&out).ok().as_deref() != Some(want.as_str()) {
            write_atomic(&out, want.as_bytes())?;
        }
    }
    Ok(())
}

/// Parses `CONFIG_X=y` / `# CONFIG_X is not set` lines of a fragment.
fn requested(fragment: &str) -> Vec<(String, Option<String>)> {
    fragment
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some(rest) = l.strip_prefix("# ") {
                let name = rest.strip_suffix(" is not set")?;
                return Some((name.to_string(), None));
            }
            if l.starts_with('#') || l.is_empty() {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), Some(v.to_string())))
        })
        .collect()
}

/// tinyconfig + fragments, merged as allnoconfig with KCONFIG_ALLCONFIG (not
/// olddefconfig, which turns on unwanted defaults), then checked: every
/// requested symbol must have the requested value in the final .config.
fn configure(tree: &Tree) -> Result<()> {
    if tree.variant == Variant::Distro {
        return crate::distro::configure(tree);
    }
    if tree.variant == Variant::Stock {
        write_stock_fragment()?;
    }
    configure_with(tree, &fragments(tree.variant))
}

fn configure_with(tree: &Tree, frags: &[PathBuf]) -> Result<()> {
    let want = fingerprint(frags)?;
    let stamp = tree.stamp("config");
    if tree.dir.join(".config").exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str())
    {
        return Ok(());
    }
    run(tree.make().arg("tinyconfig"))?;
    let mut merge = Cmd::new(tree.dir.join("scripts/kconfig/merge_config.sh"))
        .current_dir(&tree.dir)
        .arg("-m")
        .arg("-O")
        .arg(tree.dir.join(".modswap"))
        .arg(tree.dir.join(".config"));
    for f in frags {
        merge = merge.arg(f);
    }
    std::fs::create_dir_all(tree.dir.join(".modswap"))?;
    output(merge.env("ARCH", "x86_64"))?;
    let merged = tree.dir.join(".modswap/.config");
    let allconfig = tree.dir.join(".modswap/allconfig");
    std::fs::rename(&merged, &allconfig)?;
    run(tree
        .make()
        .arg(format!("KCONFIG_ALLCONFIG={}", allconfig.display()))
        .arg("allnoconfig"))?;
    let config = std::fs::read_to_string(tree.dir.join(".config"))?;
    let mut wrong = Vec::new();
    for f in frags {
        for (name, value) in requested(&std::fs::read_to_string(f)?) {
            let have = config.lines().find_map(|l| {
                if l == format!("# {name} is not set") {
                    Some(None)
                } else {
                    l.strip_prefix(&format!("{name}="))
                        .map(|v| Some(v.to_string()))
                }
            });
            let have = have.unwrap_or(None);
            if have != value {
                wrong.push(format!(
                    "{name}: wanted {}, got {} (from {})",
                    value.as_deref().unwrap_or("n"),
                    have.as_deref().unwrap_or("n"),
                    f.display()
                ));
            }
        }
    }
    if !wrong.is_empty() {
        bail!(
            "kernel config of {} does not have what the fragments ask for \
             (a dependency is missing from the fragment):\n  {}",
            tree.dir.display(),
            wrong.join("\n  ")
        );
    }
    write_atomic(&stamp, want.as_bytes())?;
    Ok(())
}

/// Unpacks, patches, configures and builds the tree (bzImage and modules).
pub fn prepare(variant: Variant) -> Result<Tree> {
    let tree = Tree::new(variant);
    std::fs::create_dir_all(paths::cache_dir())?;
    unpack(&tree)?;
    apply_series(&tree)?;
    configure(&tree)?;
    run(tree.make().arg("all"))?;
    Ok(tree)
}

/// The tree of `variant`, unpacked and patched, neither configured nor built:
/// for what reads the loader's sources.
pub fn patched(variant: Variant) -> Result<Tree> {
    let tree = Tree::new(variant);
    std::fs::create_dir_all(paths::cache_dir())?;
    unpack(&tree)?;
    apply_series(&tree)?;
    Ok(tree)
}

/// An unpatched tree at `<cache>/linux-<version>-<name>`, configured like
/// the stock tree, with only `modules_prepare` built: enough for
/// `make <dir>/` of one module directory, whose saved compile commands
/// `modswap annotate` reads. The quickstart's tree.
pub fn prepare_source(name: &str) -> Result<Tree> {
    let tree = Tree {
        variant: Variant::Stock,
        dir: paths::cache_dir().join(format!("linux-{}-{name}", paths::KERNEL_VERSION)),
    };
    std::fs::create_dir_all(paths::cache_dir())?;
    unpack(&tree)?;
    configure(&tree)?;
    run(tree.make().arg("modules_prepare"))?;
    Ok(tree)
}

/// `git -C <tree> ...` with the project's identity.
pub fn tree_git(tree: &Tree) -> Cmd {
    git(tree)
}

/// Builds the hotswap tree after each patch of the series (each must
/// build), then with the whole series and CONFIG_MODULE_HOTSWAP off (the
/// kernel must still build without it, and load modules as before: booted
/// in QEMU); leaves the tree at the full series with the normal
/// configuration, built.
pub fn check_series() -> Result<Tree> {
    let tree = Tree::new(Variant::Hotswap);
    std::fs::create_dir_all(paths::cache_dir())?;
    unpack(&tree)?;
    let patches = series()?;
    let text = std::fs::read_to_string(paths::repo_root().join("loader/hotswap.config"))?;
    // Before the patch that adds the option, and once at the end: without it.
    let off = tree.stamp("hotswap-off.config");
    write_atomic(&off, stock_fragment(&text).as_bytes())?;
    let off_frags = [paths::repo_root().join("xtask/kernel/qemu.config"), off];
    for k in 1..=patches.len() {
        let name = patches[k - 1]
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        eprintln!(
            "kernel: building with patches 1-{k} of {} ({name})",
            patches.len()
        );
        apply(&tree, &patches[..k])?;
        let kconfig = std::fs::read_to_string(tree.dir.join("kernel/module/Kconfig"))?;
        if kconfig.contains("config MODULE_HOTSWAP\n") {
            configure(&tree)?;
        } else {
            configure_with(&tree, &off_frags)?;
        }
        run(tree.make().arg("all"))
            .with_context(|| format!("the series does not build at patch {k}: {name}"))?;
    }
    eprintln!("kernel: building the whole series with CONFIG_MODULE_HOTSWAP off");
    configure_with(&tree, &off_frags)?;
    run(tree.make().arg("all"))
        .context("the series does not build with CONFIG_MODULE_HOTSWAP off")?;
    crate::loadertest::test_off(&tree)?;
    let _ = std::fs::remove_file(tree.stamp("config"));
    prepare(Variant::Hotswap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stock_fragment_drops_the_loader_option_only() {
        let f = stock_fragment("# c\nCONFIG_MODULE_HOTSWAP=y\nCONFIG_DEBUG_LIST=y\n");
        assert_eq!(f, "# c\nCONFIG_DEBUG_LIST=y\n");
    }

    #[test]
    fn fragment_lines_parse() {
        let r = requested("CONFIG_A=y\n# CONFIG_B is not set\n# comment\nCONFIG_C=\"x\"\n");
        assert_eq!(
            r,
            vec![
                ("CONFIG_A".into(), Some("y".into())),
                ("CONFIG_B".into(), None),
                ("CONFIG_C".into(), Some("\"x\"".into())),
            ]
        );
    }
}
