//! `cargo xtask quickstart`: the README's main command.
//!
//! Sets up the machine (`setup::all`), then runs the main job on real
//! kernel code: unpacks the installed linux-source-6.12 into
//! `<cache>/linux-6.12.117-quickstart` (unpatched, configured like the
//! project's QEMU kernel), builds fs/fat with Kbuild so that its compile
//! commands exist, and runs `modswap annotate fs/fat` in that tree: the
//! report goes to stdout and the sources are rewritten in place (each run
//! starts again from the pristine fs/fat). The annotated fs/fat is built
//! again with Kbuild, to show that it compiles.
//!
//! Then it builds the bundled example modules
//! (v1 and v2 of each) against Debian's 6.12 headers, and shows what
//! modswap makes of them: `modswap inspect --brief` of each version, then
//! `modswap verify v1 v2` (which must say "compatible"). Builds happen in
//! `target/quickstart/`, from a fresh copy of the sources each time.

use crate::kernel;
use crate::paths;
use crate::setup;
use crate::util::{output, run, Cmd};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The examples: directory under `examples/` and module name.
pub const EXAMPLES: [(&str, &str); 2] =
    [("counterdev", "counterdev"), ("ramfs_mini", "ramfs_mini")];

/// Builds the `modswap` binary and returns its path.
fn modswap_binary() -> Result<PathBuf> {
    let out = output(
        Cmd::new(env!("CARGO"))
            .args([
                "build",
                "--locked",
                "--package",
                "modswap-cli",
                "--bin",
                "modswap",
            ])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(paths::repo_root()),
    )?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "modswap")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .context("cargo did not report the modswap executable")
}

fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let source = (name.ends_with(".c") && !name.ends_with(".mod.c"))
            || name.ends_with(".h")
            || name == "Kbuild";
        if source && e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Builds `examples/<dir>/<version>` in `target/quickstart/<dir>/<version>`.
pub fn build_example(dir: &str, version: &str, module: &str) -> Result<PathBuf> {
    let root = paths::repo_root();
    let build = root.join("target/quickstart").join(dir).join(version);
    copy_sources(&root.join("examples").join(dir).join(version), &build)?;
    run(Cmd::new("make")
        .arg("-C")
        .arg(paths::DEBIAN_HEADERS)
        .arg(format!("M={}", build.display()))
        .arg(format!(
            "MODSWAP_INCLUDE={}",
            root.join("loader/include").display()
        )))?;
    let ko = build.join(format!("{module}.ko"));
    if !ko.exists() {
        bail!("{} was not built", ko.display());
    }
    Ok(ko)
}

/// `modswap annotate fs/fat` on the installed kernel source.
fn annotate_fs_fat(modswap: &Path) -> Result<String> {
    let tree = kernel::prepare_source("quickstart")?;
    // Start from the pristine sources: the annotation of an earlier run is
    // undone (the tree is a git repository of the unpacked source).
    run(kernel::tree_git(&tree).args(["checkout", "-q", "--", "fs/fat"]))?;
    run(tree.make().arg("fs/fat/"))?;
    // (A first build without the toolkit's include path; the build after
    // the annotation adds it.)
    println!(
        "\n=== modswap annotate fs/fat   (in {})\n",
        tree.dir.display()
    );
    run(Cmd::new(modswap)
        .arg("annotate")
        .arg("fs/fat")
        .current_dir(&tree.dir))
    .context("modswap annotate fs/fat failed")?;
    // The tree is unpatched, so <linux/modswap.h> comes from the toolkit,
    // as for an out-of-tree build against stock headers.
    println!("\n=== make fs/fat/   (the annotated sources build with Kbuild)\n");
    run(tree
        .make()
        .arg(format!(
            "KCFLAGS=-I{}",
            paths::repo_root().join("loader/include").display()
        ))
        .arg("fs/fat/"))?;
    let stat = output(kernel::tree_git(&tree).args(["diff", "--stat", "--", "fs/fat"]))?;
    let stat = String::from_utf8_lossy(&stat.stdout).trim_end().to_string();
    println!("\n{stat}");
    let summary = stat
        .lines()
        .last()
        .unwrap_or("no change")
        .trim()
        .to_string();
    Ok(format!(
        "fs/fat annotated in {}/fs/fat ({summary}); review it with `git -C {} diff fs/fat`",
        tree.dir.display(),
        tree.dir.display()
    ))
}

pub fn quickstart() -> Result<()> {
    setup::all()?;
    let modswap = modswap_binary()?;
    let mut verdicts = vec![annotate_fs_fat(&modswap)?];
    for (dir, module) in EXAMPLES {
        let v1 = build_example(dir, "v1", module)?;
        let v2 = build_example(dir, "v2", module)?;
        for ko in [&v1, &v2] {
            println!("\n=== modswap inspect --brief {}\n", ko.display());
            run(Cmd::new(&modswap).arg("inspect").arg("--brief").arg(ko))?;
        }
        println!("\n=== modswap verify {} {}\n", v1.display(), v2.display());
        run(Cmd::new(&modswap).arg("verify").arg(&v1).arg(&v2))
            .with_context(|| format!("{dir}: v2 cannot replace v1"))?;
        verdicts.push(format!("{dir}: v2 can replace v1 in place"));
    }
    println!("\nquickstart: done");
    for v in verdicts {
        println!("  {v}");
    }
    Ok(())
}
