//! The paper's experiment on Linux 6.12 (Lee & Chang 2005,
//! section 4): fat, vfat, msdos and bfs are hotswapped, v1 to v2 and back,
//! while busybox httpd serves a WebBench-like file set from a mounted FAT32
//! partition to 50 clients and writers change files on every mount.
//!
//! `cargo xtask demo` runs it and prints a summary, `cargo xtask test`
//! runs it after the loader tests, `cargo xtask bench e2e` adds the stock
//! kernel and prints the paper's tables. The stages:
//!
//! 1. [`build`]: for each module directory (fs/fat: fat, vfat, msdos;
//!    fs/bfs: bfs), copy the pristine sources out of the kernel tree's base
//!    commit twice; v2 gets `examples/<dir>/v2.patch`. Both copies are built
//!    with Kbuild against the tree (`make -C <tree> M=<copy>`), annotated
//!    with `modswap annotate`, given their replace handlers (regenerated
//!    with `modswap handler` over the reviewed ones in `examples/`, which
//!    must come out unchanged: a stale reviewed handler fails the run),
//!    rebuilt with `-Werror`, and checked with `modswap verify` both ways.
//!    v1 is hotswappable too: its handler is generated the other way
//!    (`--old v2 --new v1`), so that v2 can be swapped back to v1.
//! 2. [`boot`]: an initramfs with busybox, `webload` (examples/e2e) and
//!    `run.sh`, three disk images (FAT32, FAT16, BFS), QEMU TCG -smp 2.
//! 3. [`check`]: the serial log (every E2E- line of run.sh), the kernel's
//!    warnings, `fsck.fat -n` of both FAT images after the power-off.

use crate::kernel::{Tree, Variant};
use crate::paths;
use crate::qemu::{kernel_problems, Boot, BootLog, Initramfs};
use crate::util::{copy_module_sources, median, output, run, work_dir, Cmd};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod guest;
mod handlers;
mod report;

pub(crate) use guest::*;
pub(crate) use handlers::*;
pub(crate) use report::*;

/// A module directory of the kernel that the experiment swaps.
pub struct ModDir {
    /// Its path in the kernel tree.
    pub src: &'static str,
    /// Its directory under `examples/` (v2.patch, v1/ and v2/ handlers).
    pub example: &'static str,
    /// The modules built from it.
    pub modules: &'static [&'static str],
}

pub const DIRS: [ModDir; 2] = [
    ModDir {
        src: "fs/fat",
        example: "fs-fat",
        modules: &["fat", "vfat", "msdos"],
    },
    ModDir {
        src: "fs/bfs",
        example: "fs-bfs",
        modules: &["bfs"],
    },
];

pub const VERSIONS: [&str; 2] = ["v1", "v2"];

pub(crate) fn other(version: &str) -> &'static str {
    if version == "v1" {
        "v2"
    } else {
        "v1"
    }
}

pub(crate) fn examples() -> PathBuf {
    paths::repo_root().join("examples")
}

/// The copy of a module directory for one version: `<work>/<dir>/<version>`.
pub(crate) fn copy_dir(work: &Path, d: &ModDir, version: &str) -> PathBuf {
    work.join(d.example).join(version)
}

/// The built modules: `.ko` by (module, version).
pub struct Built {
    pub kos: BTreeMap<(String, String), PathBuf>,
}

impl Built {
    pub(crate) fn ko(&self, module: &str, version: &str) -> Result<&Path> {
        self.kos
            .get(&(module.to_string(), version.to_string()))
            .map(PathBuf::as_path)
            .with_context(|| format!("{module} {version} was not built"))
    }
}

/// The first commit of the tree's repository: the unmodified source.
pub(crate) fn base_commit(tree: &Tree) -> Result<String> {
    let out = output(Cmd::new("git").arg("-C").arg(&tree.dir).args([
        "rev-list",
        "--max-parents=0",
        "HEAD",
    ]))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies the pristine `d.src` of `tree` into `to` (which is recreated).
pub(crate) fn pristine(tree: &Tree, base: &str, d: &ModDir, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    std::fs::create_dir_all(to)?;
    let archive = output(
        Cmd::new("git")
            .arg("-C")
            .arg(&tree.dir)
            .arg("archive")
            .arg(base)
            .arg(d.src),
    )?;
    let depth = d.src.split('/').count();
    let tar = Cmd::new("tar")
        .arg("-x")
        .arg(format!("--strip-components={depth}"))
        .arg("-C")
        .arg(to);
    let mut child = tar
        .into_inner()
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("cannot start tar")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("tar stdin")?;
        stdin.write_all(&archive.stdout)?;
    }
    if !child.wait()?.success() {
        bail!("unpacking {} into {} failed", d.src, to.display());
    }
    Ok(())
}

/// `make -C <tree> M=<dir> modules`; quiet unless it fails.
pub(crate) fn kbuild(tree: &Tree, dir: &Path, werror: bool) -> Result<()> {
    let mut kcflags = format!("-I{}", paths::repo_root().join("loader/include").display());
    if werror {
        kcflags.push_str(" -Werror");
    }
    output(
        tree.make()
            .arg(format!("M={}", dir.display()))
            .arg(format!("KCFLAGS={kcflags}"))
            .args(["-s", "modules"]),
    )
    .with_context(|| format!("building {}", dir.display()))?;
    Ok(())
}

/// `modswap verify old new`: must say compatible.
pub(crate) fn verify(modswap: &Path, old: &Path, new: &Path) -> Result<()> {
    let out = Cmd::new(modswap)
        .arg("verify")
        .arg(old)
        .arg(new)
        .into_inner()
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run modswap verify")?;
    if !out.status.success() {
        bail!(
            "modswap verify {} {}: not compatible (exit {}):\n{}{}",
            old.display(),
            new.display(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Stage 1 on the hotswap tree: both versions of every module directory,
/// annotated, with their handlers, built and verified both ways.
pub fn build(tree: &Tree, modswap: &Path) -> Result<Built> {
    let work = work_dir("e2e", tree.variant);
    std::fs::create_dir_all(&work)?;
    let base = base_commit(tree)?;
    let mut kos = BTreeMap::new();
    for d in &DIRS {
        eprintln!(
            "e2e: {}: v1 = annotated {}, v2 = v1 + {}/v2.patch",
            d.example, d.src, d.example
        );
        for v in VERSIONS {
            let dir = copy_dir(&work, d, v);
            pristine(tree, &base, d, &dir)?;
            if v == "v2" {
                let patch = examples().join(d.example).join("v2.patch");
                let depth = d.src.split('/').count() + 1;
                output(
                    Cmd::new("git")
                        .args(["apply", &format!("-p{depth}")])
                        .arg(&patch)
                        .current_dir(&dir),
                )
                .with_context(|| format!("{} does not apply to {}", patch.display(), d.src))?;
            }
            // Kbuild's saved commands are what annotate parses with.
            kbuild(tree, &dir, false)?;
            let report = output(
                Cmd::new(modswap)
                    .arg("annotate")
                    .arg("--kdir")
                    .arg(&tree.dir)
                    .arg(&dir),
            )?;
            std::fs::write(
                work.join(d.example).join(format!("annotate-{v}.txt")),
                &report.stdout,
            )?;
        }
        let units = handlers(modswap, tree, &work, d)?;
        for v in VERSIONS {
            let dir = copy_dir(&work, d, v);
            include_handlers(&dir, d, v, &units)?;
            kbuild(tree, &dir, true)?;
            for m in d.modules {
                let ko = dir.join(format!("{m}.ko"));
                if !ko.exists() {
                    bail!("{} was not built", ko.display());
                }
                kos.insert((m.to_string(), v.to_string()), ko);
            }
        }
        for m in d.modules {
            let (k1, k2) = (
                &kos[&(m.to_string(), "v1".into())],
                &kos[&(m.to_string(), "v2".into())],
            );
            verify(modswap, k1, k2)?;
            verify(modswap, k2, k1)?;
        }
        eprintln!(
            "e2e: {}: handlers current, built with -Werror, `modswap verify` both ways: compatible",
            d.example
        );
    }
    Ok(Built { kos })
}

/// v1 of every module built against the stock tree, from the hotswap
/// build's annotated sources (the markers are ordinary sections there).
pub(crate) fn build_stock(tree: &Tree, hotswap: &Path) -> Result<Built> {
    let work = work_dir("e2e", tree.variant);
    let mut kos = BTreeMap::new();
    for d in &DIRS {
        let from = copy_dir(hotswap, d, "v1");
        let dir = copy_dir(&work, d, "v1");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        copy_module_sources(&from, &dir)?;
        kbuild(tree, &dir, true)?;
        for m in d.modules {
            kos.insert((m.to_string(), "v1".into()), dir.join(format!("{m}.ko")));
        }
    }
    Ok(Built { kos })
}

pub(crate) fn run_experiment(tree: &Tree, p: Params) -> Result<Report> {
    let modswap = modswap_binary()?;
    let built = build(tree, &modswap)?;
    let (log, disks) = boot(tree, &built, p)?;
    let r = parse(&log.text);
    let mut problems = check(&r, &log, p);
    let mut clean = Vec::new();
    for img in &disks[..2] {
        match fsck(img) {
            Ok(line) => clean.push((
                img.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                line,
            )),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the experiment failed:\n  {}\n(serial log: {})",
            problems.join("\n  "),
            work_dir("e2e", tree.variant)
                .join(format!("serial-{}.log", p.mode))
                .display()
        );
    }
    if p.mode == "demo" {
        summary(&r, p, &clean);
    }
    Ok(r)
}

/// The `modswap` binary: `$MODSWAP_BIN` if set (a prebuilt one), else
/// built from this checkout.
pub(crate) fn modswap_binary() -> Result<PathBuf> {
    match std::env::var_os("MODSWAP_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => crate::quickstart::modswap_binary(),
    }
}

/// `cargo xtask demo`: the whole experiment, then its summary.
pub fn demo(rounds: u32, clients: u32, variant: Variant) -> Result<()> {
    let tree = crate::kernel::prepare(variant)?;
    run_experiment(&tree, Params::demo(rounds, clients))?;
    Ok(())
}

/// The experiment as part of `cargo xtask test` (about 10 minutes on 2
/// cores): 20 round trips of each module under 50 clients.
pub fn test(tree: &Tree) -> Result<()> {
    let p = Params {
        mode: "test",
        ..Params::demo(20, 50)
    };
    let r = run_experiment(tree, p)?;
    eprintln!(
        "e2e: {} swaps accepted ({} -EBUSY retried), {} requests, no failure",
        r.swaps.len(),
        r.busy.len(),
        r.web
            .as_ref()
            .and_then(|w| w.get("requests").cloned())
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_units_from_the_json_summary() {
        let one = r#"{"handler": "v2/vfat_modswap.c", "units": [
            {"append": "\n#include \"vfat_modswap.c\"\n", "define": null,
             "include": "vfat_modswap.c", "unit": "namei_vfat.c"}]}"#;
        let u = handler_units(one).unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].unit, "namei_vfat.c");
        assert_eq!(u[0].append, "\n#include \"vfat_modswap.c\"\n");
        assert!(handler_units("fat_modswap.c: written").is_err());
    }

    #[test]
    fn every_example_has_its_patch_and_reviewed_handlers() {
        for d in &DIRS {
            assert!(examples().join(d.example).join("v2.patch").exists());
            for v in VERSIONS {
                for m in d.modules {
                    let h = examples()
                        .join(d.example)
                        .join(v)
                        .join(format!("{m}_modswap.c"));
                    let text = std::fs::read_to_string(&h).unwrap();
                    assert!(
                        !text
                            .lines()
                            .any(|l| l.trim_start().starts_with("static_assert(0,")),
                        "{}: open TODO",
                        h.display()
                    );
                }
            }
        }
    }

    fn passing_log() -> String {
        let mut s = String::new();
        for m in ["fat", "vfat", "msdos", "bfs"] {
            s.push_str(&format!("E2E-BEHAVIOUR {m} v1 ok x\n"));
            for v in ["v2", "v1"] {
                s.push_str(&format!(
                    "E2E-SWAP {m} {v} ok us=10 attempts=1 total_ns=5 tries=1\n"
                ));
                s.push_str(&format!("E2E-BEHAVIOUR {m} {v} ok x\n"));
            }
        }
        s.push_str("E2E-PHASE before 1.0\nE2E-PHASE swapping 3.5\nE2E-PHASE after 6.0\nE2E-PHASE end 9.0\n");
        for t in 1..10 {
            s.push_str(&format!(
                "E2E-RPS {t} {} 0\n",
                if (4..6).contains(&t) { 5 } else { 10 }
            ));
        }
        s.push_str("E2E-WEB requests=80 failed=0 mismatches=0 clients_lost=0\n");
        for d in ["/mnt/vfat/w", "/mnt/msdos", "/mnt/bfs"] {
            s.push_str(&format!("E2E-WRITE {d} ops=7 errors=0\n"));
        }
        s.push_str("E2E-MOUNTS kept: 1 /mnt/vfat\nE2E-RESULT PASS\nreboot: Power down\n");
        s
    }

    fn boot_log(text: &str) -> BootLog {
        BootLog {
            text: text.to_string(),
            timed_out: false,
            powered_off: text.contains("reboot: Power down"),
            elapsed: Duration::ZERO,
        }
    }

    fn params() -> Params {
        Params::demo(1, 50)
    }

    #[test]
    fn a_complete_run_passes_and_rates_split_by_phase() {
        let text = passing_log();
        let r = parse(&text);
        assert_eq!(check(&r, &boot_log(&text), params()), Vec::<String>::new());
        let (b, d, a) = rates(&r).unwrap();
        assert_eq!((b, a), (10.0, 10.0));
        assert!(d < 10.0, "{d}");
    }

    #[test]
    fn failures_are_each_reported() {
        let text = passing_log()
            .replace("E2E-SWAP vfat v2 ok", "E2E-SWAP vfat v2 refused")
            .replace("failed=0 mismatches=0", "failed=1 mismatches=1")
            .replace(
                "E2E-BEHAVIOUR bfs v2 ok x",
                "E2E-BEHAVIOUR bfs v2 FAIL got EPERM",
            )
            .replace("/mnt/bfs ops=7 errors=0", "/mnt/bfs ops=7 errors=2")
            .replace("E2E-MOUNTS kept: 1 /mnt/vfat\n", "")
            + "[ 9.0] BUG: kernel NULL pointer dereference\n";
        let p = check(&parse(&text), &boot_log(&text), params());
        let has = |s: &str| p.iter().any(|x| x.contains(s));
        assert!(has("vfat: 0 accepted swaps to v2"), "{p:#?}");
        assert!(has("1 failed, 1 checksum"), "{p:#?}");
        assert!(has("bfs v2 FAIL"), "{p:#?}");
        assert!(has("writers on /mnt/bfs"), "{p:#?}");
        assert!(has("mounts did not stay"), "{p:#?}");
        assert!(has("NULL pointer"), "{p:#?}");
    }

    #[test]
    fn a_missing_behaviour_check_fails() {
        let text = passing_log().replacen("E2E-BEHAVIOUR fat v2 ok x\n", "", 1);
        let p = check(&parse(&text), &boot_log(&text), params());
        assert!(
            p.iter()
                .any(|x| x.contains("fat: v2's behaviour seen 0 times")),
            "{p:#?}"
        );
    }

    #[test]
    fn run_sh_reports_what_the_host_parses() {
        let script = std::fs::read_to_string(examples().join("e2e/run.sh")).unwrap();
        for word in [
            "SWAP ",
            "SWAP-BUSY",
            "BEHAVIOUR",
            "PHASE before",
            "PHASE swapping",
            "PHASE after",
            "PHASE end",
            "MOUNTS kept",
            "RESULT",
            "BENCH load",
            "BENCH kept",
            "BENCH resolve vfat",
        ] {
            assert!(script.contains(word), "run.sh never says {word}");
        }
    }
}
