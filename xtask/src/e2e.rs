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
use crate::util::{median, output, pct, run, work_dir, Cmd};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

fn other(version: &str) -> &'static str {
    if version == "v1" {
        "v2"
    } else {
        "v1"
    }
}

fn examples() -> PathBuf {
    paths::repo_root().join("examples")
}

/// The copy of a module directory for one version: `<work>/<dir>/<version>`.
fn copy_dir(work: &Path, d: &ModDir, version: &str) -> PathBuf {
    work.join(d.example).join(version)
}

/// The built modules: `.ko` by (module, version).
pub struct Built {
    pub kos: BTreeMap<(String, String), PathBuf>,
}

impl Built {
    fn ko(&self, module: &str, version: &str) -> Result<&Path> {
        self.kos
            .get(&(module.to_string(), version.to_string()))
            .map(PathBuf::as_path)
            .with_context(|| format!("{module} {version} was not built"))
    }
}

/// The first commit of the tree's repository: the unmodified source.
fn base_commit(tree: &Tree) -> Result<String> {
    let out = output(Cmd::new("git").arg("-C").arg(&tree.dir).args([
        "rev-list",
        "--max-parents=0",
        "HEAD",
    ]))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies the pristine `d.src` of `tree` into `to` (which is recreated).
fn pristine(tree: &Tree, base: &str, d: &ModDir, to: &Path) -> Result<()> {
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
fn kbuild(tree: &Tree, dir: &Path, werror: bool) -> Result<()> {
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

/// A unit a handler is compiled inside, as `modswap handler --format json`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Unit {
    /// The C file, relative to the module directory.
    pub unit: String,
    /// The macro to define before the include (handlers with several parts).
    pub define: Option<String>,
    /// The handler.
    pub include: String,
}

impl Unit {
    /// The lines that end the unit.
    fn lines(&self) -> String {
        let define = self
            .define
            .as_ref()
            .map(|d| format!("\n#define {d}"))
            .unwrap_or_default();
        format!("{define}\n#include \"{}\"\n", self.include)
    }
}

/// The units of `modswap handler --format json`'s output.
pub fn handler_units(json: &str) -> Result<Vec<Unit>> {
    #[derive(serde::Deserialize)]
    struct Summary {
        units: Vec<Unit>,
    }
    let s: Summary =
        serde_json::from_str(json).context("modswap handler --format json printed no summary")?;
    Ok(s.units)
}

/// The units each handler (by version and module) is compiled inside.
type Units = BTreeMap<(&'static str, String), Vec<Unit>>;

/// Regenerates the handlers of `d` in both directions over the reviewed
/// ones and checks that the reviewed ones are current.
fn handlers(modswap: &Path, tree: &Tree, work: &Path, d: &ModDir) -> Result<Units> {
    let mut problems = Vec::new();
    let mut units = Units::new();
    let parent = work.join(d.example);
    for new in VERSIONS {
        for m in d.modules {
            let name = format!("{m}_modswap.c");
            let reviewed = examples().join(d.example).join(new).join(&name);
            let target = parent.join(new).join(&name);
            let kept = std::fs::read(&reviewed).ok();
            if let Some(bytes) = &kept {
                std::fs::write(&target, bytes)?;
            }
            let out = Cmd::new(modswap)
                .arg("handler")
                .arg("--kdir")
                .arg(&tree.dir)
                .args(["--old", other(new), "--new", new, "--module", m])
                .args(["--format", "json"])
                .current_dir(&parent)
                .into_inner()
                .stdin(std::process::Stdio::null())
                .output()
                .context("cannot run modswap handler")?;
            if !out.status.success() {
                problems.push(format!(
                    "modswap handler --old {} --new {new} --module {m} refused (exit {}), \
                     regenerating over {}:\n{}",
                    other(new),
                    out.status.code().unwrap_or(-1),
                    reviewed.display(),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                ));
                continue;
            }
            units.insert(
                (new, m.to_string()),
                handler_units(&String::from_utf8_lossy(&out.stdout))?,
            );
            let now = std::fs::read(&target)
                .with_context(|| format!("modswap handler wrote no {}", target.display()))?;
            match kept {
                None => problems.push(format!(
                    "{} is missing: review the generated {} and copy it there",
                    reviewed.display(),
                    target.display()
                )),
                Some(k) if k != now => {
                    let diff = Cmd::new("diff")
                        .arg("-u")
                        .arg(&reviewed)
                        .arg(&target)
                        .into_inner()
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    problems.push(format!(
                        "{} is stale: modswap handler generates {} from the current \
                         sources; review it and copy it over:\n{diff}",
                        reviewed.display(),
                        target.display()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the reviewed handlers of {} are not current:\n{}",
            d.example,
            problems.join("\n")
        );
    }
    Ok(units)
}

/// Ends the units of version `v`'s handlers with the lines that compile
/// them in.
fn include_handlers(dir: &Path, d: &ModDir, v: &'static str, units: &Units) -> Result<()> {
    for m in d.modules {
        let units = units
            .get(&(v, m.to_string()))
            .map_or(&[][..], Vec::as_slice);
        if units.is_empty() {
            bail!("modswap handler names no unit to compile {m}_modswap.c in");
        }
        for u in units {
            let unit = dir.join(&u.unit);
            let mut src = std::fs::read_to_string(&unit)
                .with_context(|| format!("reading {}", unit.display()))?;
            src.push_str(&u.lines());
            std::fs::write(&unit, src)?;
        }
    }
    Ok(())
}

/// `modswap verify old new`: must say compatible.
fn verify(modswap: &Path, old: &Path, new: &Path) -> Result<()> {
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
fn build_stock(tree: &Tree, hotswap: &Path) -> Result<Built> {
    let work = work_dir("e2e", tree.variant);
    let mut kos = BTreeMap::new();
    for d in &DIRS {
        let from = copy_dir(hotswap, d, "v1");
        let dir = copy_dir(&work, d, "v1");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        for e in std::fs::read_dir(&from)? {
            let p = e?.path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if (name.ends_with(".c") && !name.ends_with(".mod.c"))
                || name.ends_with(".h")
                || name == "Makefile"
            {
                std::fs::copy(&p, dir.join(&name))?;
            }
        }
        kbuild(tree, &dir, true)?;
        for m in d.modules {
            kos.insert((m.to_string(), "v1".into()), dir.join(format!("{m}.ko")));
        }
    }
    Ok(Built { kos })
}

/// The experiment's parameters (kernel command line of the guest).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub mode: &'static str,
    /// v1 -> v2 -> v1 round trips of each module.
    pub rounds: u32,
    pub clients: u32,
    /// Seconds of load before and after the swaps.
    pub before: u32,
    pub after: u32,
}

impl Params {
    pub fn demo(rounds: u32, clients: u32) -> Params {
        Params {
            mode: "demo",
            rounds,
            clients,
            before: 10,
            after: 10,
        }
    }
}

fn webload(out: &Path) -> Result<PathBuf> {
    let bin = out.join("webload");
    run(Cmd::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(examples().join("e2e/webload.c")))?;
    Ok(bin)
}

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
sh /e2e/run.sh
echo E2E-DONE
poweroff -f
"#;

fn initramfs(tree: &Tree, built: &Built, out: &Path, webload: &Path) -> Result<PathBuf> {
    let init = out.join("init");
    std::fs::write(&init, INIT)?;
    let mut fs = Initramfs::new();
    fs.busybox()?;
    fs.file("/init", &init, 0o755)
        .file("/bin/webload", webload, 0o755)
        .dir("/e2e")
        .file("/e2e/run.sh", &examples().join("e2e/run.sh"), 0o755)
        .dir("/mnt")
        .dir("/modules")
        .dir("/modules/nls");
    for nls in ["nls_cp437", "nls_iso8859-1"] {
        fs.file(
            &format!("/modules/nls/{nls}.ko"),
            &tree.dir.join(format!("fs/nls/{nls}.ko")),
            0o644,
        );
    }
    for v in VERSIONS {
        let mut dir_made = false;
        for ((m, ver), ko) in &built.kos {
            if ver != v {
                continue;
            }
            if !dir_made {
                fs.dir(&format!("/modules/{v}"));
                dir_made = true;
            }
            fs.file(&format!("/modules/{v}/{m}.ko"), ko, 0o644);
        }
    }
    let cpio = out.join("initramfs.cpio");
    fs.build(&tree.dir, &cpio)?;
    Ok(cpio)
}

/// Fresh disk images: FAT32 (64 MiB, vfat), FAT16 (16 MiB, msdos), BFS (64 MiB:
/// BFS gets back the blocks of a deleted file only when it is the last file
/// on the disk, so the writer's churn uses up about 2 KB per operation; an
/// 8 MiB image filled up on a quiet machine).
fn images(out: &Path) -> Result<Vec<PathBuf>> {
    let (vfat, msdos, bfs) = (
        out.join("vfat.img"),
        out.join("msdos.img"),
        out.join("bfs.img"),
    );
    for i in [&vfat, &msdos, &bfs] {
        if i.exists() {
            std::fs::remove_file(i)?;
        }
    }
    output(
        Cmd::new("mkfs.vfat")
            .args(["-F", "32", "-s", "1", "-n", "MODSWAP", "-C"])
            .arg(&vfat)
            .arg("65536"),
    )?;
    output(
        Cmd::new("mkfs.msdos")
            .args(["-F", "16", "-C"])
            .arg(&msdos)
            .arg("16384"),
    )?;
    std::fs::File::create(&bfs)?.set_len(64 << 20)?;
    output(Cmd::new("mkfs.bfs").arg(&bfs))?;
    Ok(vec![vfat, msdos, bfs])
}

/// Boots `tree` with the built modules and `run.sh` in mode `p.mode`.
fn boot(tree: &Tree, built: &Built, p: Params) -> Result<(BootLog, Vec<PathBuf>)> {
    let out = work_dir("e2e", tree.variant);
    std::fs::create_dir_all(&out)?;
    let bin = webload(&out)?;
    let cpio = initramfs(tree, built, &out, &bin)?;
    let disks = images(&out)?;
    let log = out.join(format!("serial-{}.log", p.mode));
    let mut boot = Boot::new(tree.bzimage(), cpio, log.clone());
    boot.drives = disks.clone();
    let quiet = if p.mode.starts_with("bench") {
        " loglevel=4"
    } else {
        ""
    };
    boot.append = format!(
        "e2e.mode={} e2e.rounds={} e2e.clients={} e2e.before={} e2e.after={}{quiet}",
        p.mode, p.rounds, p.clients, p.before, p.after
    );
    boot.timeout = Duration::from_secs(u64::from(600 + 90 * p.rounds + p.before + p.after));
    let result = boot.run()?;
    eprintln!(
        "e2e: {} run on the {:?} kernel took {:.1} s (log: {})",
        p.mode,
        tree.variant,
        result.elapsed.as_secs_f64(),
        log.display()
    );
    Ok((result, disks))
}

/// `fsck.fat -n` of an image: its report, or an error when it finds problems.
fn fsck(image: &Path) -> Result<String> {
    let out = Cmd::new("fsck.fat")
        .arg("-n")
        .arg(image)
        .into_inner()
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run fsck.fat (dosfstools)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("fsck.fat -n {}: {}", image.display(), text.trim_end());
    }
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    Ok(text
        .lines()
        .last()
        .unwrap_or_default()
        .replace(&image.display().to_string(), &name))
}

/// `key=value` words of a line.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn num(map: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    map.get(key)?.parse().ok()
}

/// One accepted swap as the guest reported it.
#[derive(Debug, Clone)]
pub struct Swap {
    pub module: String,
    pub version: String,
    pub fields: BTreeMap<String, String>,
}

/// What the serial log of a run says.
#[derive(Debug, Default)]
pub struct Report {
    pub swaps: Vec<Swap>,
    /// `-EBUSY` that came back to the guest (retried).
    pub busy: Vec<String>,
    pub behaviour_ok: BTreeMap<(String, String), usize>,
    pub behaviour_bad: Vec<String>,
    pub failures: Vec<String>,
    pub web: Option<BTreeMap<String, String>>,
    pub writes: Vec<(String, BTreeMap<String, String>)>,
    /// Requests answered per second, by CLOCK_MONOTONIC second.
    pub rps: Vec<(f64, f64)>,
    pub phases: BTreeMap<String, f64>,
    pub mounts_kept: bool,
    pub result_pass: bool,
    pub bench: Vec<String>,
}

pub fn parse(log: &str) -> Report {
    let mut r = Report::default();
    for line in log.lines() {
        // The first line may follow the firmware's escape sequences.
        let Some(rest) = line.find("E2E-").map(|at| &line[at + 4..]) else {
            continue;
        };
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        match kind {
            "SWAP" if words.len() >= 3 && words[2] == "ok" => r.swaps.push(Swap {
                module: words[0].to_string(),
                version: words[1].to_string(),
                fields: fields(rest),
            }),
            "SWAP-BUSY" => r.busy.push(rest.to_string()),
            "BEHAVIOUR" if words.len() >= 3 => {
                if words[2] == "ok" {
                    *r.behaviour_ok
                        .entry((words[0].to_string(), words[1].to_string()))
                        .or_default() += 1;
                } else {
                    r.behaviour_bad.push(rest.to_string());
                }
            }
            "FAIL" => r.failures.push(rest.to_string()),
            "WEB" if rest.starts_with("requests=") => r.web = Some(fields(rest)),
            "WRITE" if !words.is_empty() => r.writes.push((words[0].to_string(), fields(rest))),
            "RPS" if words.len() == 3 => {
                if let (Ok(s), Ok(n)) = (words[0].parse(), words[1].parse()) {
                    r.rps.push((s, n));
                }
            }
            "PHASE" if words.len() == 2 => {
                if let Ok(t) = words[1].parse() {
                    r.phases.insert(words[0].to_string(), t);
                }
            }
            "MOUNTS" if rest.starts_with("kept") => r.mounts_kept = true,
            "RESULT" => r.result_pass = rest.trim() == "PASS",
            "BENCH" => r.bench.push(rest.to_string()),
            _ => {}
        }
    }
    r
}

/// Everything that fails the experiment, each with its reason.
pub fn check(r: &Report, log: &BootLog, p: Params) -> Vec<String> {
    let mut problems: Vec<String> = r.failures.iter().map(|f| format!("guest: {f}")).collect();
    for m in DIRS.iter().flat_map(|d| d.modules.iter()) {
        for v in VERSIONS {
            let n = r
                .swaps
                .iter()
                .filter(|s| s.module == *m && s.version == v)
                .count();
            if n < p.rounds as usize {
                problems.push(format!(
                    "{m}: {n} accepted swaps to {v}, expected {}",
                    p.rounds
                ));
            }
            // Once at the start (v1), then after every swap.
            let want = n + usize::from(v == "v1");
            let seen = r
                .behaviour_ok
                .get(&(m.to_string(), v.to_string()))
                .copied()
                .unwrap_or(0);
            if seen != want {
                problems.push(format!(
                    "{m}: {v}'s behaviour seen {seen} times, expected {want} (after every swap to {v})"
                ));
            }
        }
    }
    for b in &r.behaviour_bad {
        problems.push(format!("behaviour: {b}"));
    }
    match &r.web {
        None => problems.push("the web load reported no result".into()),
        Some(w) => {
            let (req, failed, mism) = (
                num(w, "requests").unwrap_or(0.0),
                num(w, "failed").unwrap_or(-1.0),
                num(w, "mismatches").unwrap_or(-1.0),
            );
            if req <= 0.0 || failed != 0.0 || mism != 0.0 {
                problems.push(format!(
                    "web load: {req} requests, {failed} failed, {mism} checksum mismatches"
                ));
            }
        }
    }
    if r.writes.len() != 3 {
        problems.push(format!("{} writer reports, expected 3", r.writes.len()));
    }
    for (dir, w) in &r.writes {
        if num(w, "errors") != Some(0.0) || num(w, "ops").unwrap_or(0.0) <= 0.0 {
            problems.push(format!("writers on {dir}: {w:?}"));
        }
    }
    if !r.mounts_kept {
        problems.push("the mounts did not stay the same".into());
    }
    if !r.result_pass {
        problems.push("run.sh did not report E2E-RESULT PASS".into());
    }
    for k in kernel_problems(&log.text) {
        problems.push(format!("kernel log: {k}"));
    }
    if log.timed_out {
        problems.push("QEMU timed out".into());
    } else if !log.powered_off {
        problems.push("the guest did not power off (panic or crash?)".into());
    }
    problems
}

/// Requests per second in each phase: (before, during, after).
pub fn rates(r: &Report) -> Option<(f64, f64, f64)> {
    let (b, s, a, e) = (
        *r.phases.get("before")?,
        *r.phases.get("swapping")?,
        *r.phases.get("after")?,
        *r.phases.get("end")?,
    );
    // Whole seconds inside [from, to).
    let rate = |from: f64, to: f64| {
        let v: Vec<f64> = r
            .rps
            .iter()
            .filter(|(t, _)| *t >= from.ceil() && *t + 1.0 <= to.floor())
            .map(|(_, n)| *n)
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Some((rate(b + 1.0, s), rate(s, a), rate(a, e)))
}

fn swap_col(r: &Report, module: &str, key: &str) -> f64 {
    median(
        r.swaps
            .iter()
            .filter(|s| s.module == module)
            .filter_map(|s| num(&s.fields, key))
            .collect(),
    )
}

/// The demo's summary of a checked run.
fn summary(r: &Report, p: Params, fsck: &[(String, String)]) {
    println!();
    println!(
        "modswap experiment (Lee & Chang 2005, section 4) on Linux {}: QEMU TCG, 2 vCPUs",
        paths::KERNEL_VERSION
    );
    println!(
        "  load: busybox httpd on a FAT32 partition (vfat), {} clients fetching and checksumming a \
         WebBench-like file set; writers creating, appending to and renaming files on vfat, msdos and bfs",
        p.clients
    );
    println!();
    println!("  module  swaps to v2  swaps to v1  median swap (finit_module)  v2 behaviour");
    for d in &DIRS {
        for m in d.modules {
            let n = |v: &str| {
                r.swaps
                    .iter()
                    .filter(|s| s.module == *m && s.version == v)
                    .count()
            };
            let behaviour = match *m {
                "fat" => "statfs f_namelen 255/12 instead of 1530/72",
                "vfat" => "bad name -> EILSEQ instead of EINVAL",
                "msdos" => "bad name -> EILSEQ instead of EINVAL",
                _ => "mkdir -> EOPNOTSUPP instead of EPERM",
            };
            println!(
                "  {m:<6}  {:>11}  {:>11}  {:>21.1} ms  {behaviour}: seen after every swap",
                n("v2"),
                n("v1"),
                median(
                    r.swaps
                        .iter()
                        .filter(|s| s.module == *m)
                        .filter_map(|s| s.fields.get("us").and_then(|u| u.parse().ok()))
                        .collect()
                ) / 1e3
            );
        }
    }
    let retried: usize = r
        .swaps
        .iter()
        .filter_map(|s| num(&s.fields, "tries"))
        .filter(|t| *t > 1.0)
        .count();
    println!();
    println!(
        "  busy: {retried} swaps needed more than one quiescence check inside the kernel; \
         {} came back -EBUSY to the guest and succeeded when retried",
        r.busy.len()
    );
    for b in &r.busy {
        println!("    -EBUSY: {b}");
    }
    if let Some(w) = &r.web {
        println!(
            "  web: {} requests, {} failed, {} checksum mismatches",
            w["requests"], w["failed"], w["mismatches"]
        );
    }
    for (dir, w) in &r.writes {
        println!(
            "  writers on {dir}: {} create/append/rename/verify cycles, {} errors",
            w.get("ops").map(String::as_str).unwrap_or("?"),
            w.get("errors").map(String::as_str).unwrap_or("?")
        );
    }
    if let Some((b, s, a)) = rates(r) {
        println!("  requests/s: {b:.1} before the swaps, {s:.1} while swapping, {a:.1} after");
    }
    println!("  mounts: never unmounted while swapping (same mount ids before and after)");
    for (img, line) in fsck {
        println!("  fsck.fat -n {img}: clean ({})", line.trim());
    }
    println!("  kernel log: no Oops, BUG, WARNING or call trace");
}

fn run_experiment(tree: &Tree, p: Params) -> Result<Report> {
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
fn modswap_binary() -> Result<PathBuf> {
    match std::env::var_os("MODSWAP_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => crate::quickstart::modswap_binary(),
    }
}

/// `cargo xtask demo`: the whole experiment, then its summary.
pub fn demo(rounds: u32, clients: u32) -> Result<()> {
    let tree = crate::kernel::prepare(Variant::Hotswap)?;
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

fn bench_value(r: &Report, prefix: &str, key: &str) -> Option<f64> {
    r.bench
        .iter()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| num(&fields(l), key))
}

fn bench_word(r: &Report, prefix: &str) -> Option<f64> {
    r.bench
        .iter()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l[prefix.len()..].trim().parse().ok())
}

/// `cargo xtask bench e2e`: the paper's tables 1-3 and 6 for fat and vfat,
/// the request rate around the swaps, and the memory kept.
pub fn bench() -> Result<()> {
    let stock = crate::kernel::prepare(Variant::Stock)?;
    let hotswap = crate::kernel::prepare(Variant::Hotswap)?;
    let modswap = modswap_binary()?;
    let built = build(&hotswap, &modswap)?;
    let stock_built = build_stock(&stock, &work_dir("e2e", Variant::Hotswap))?;
    let sp = Params {
        mode: "bench-stock",
        ..Params::demo(0, 0)
    };
    let (slog, _) = boot(&stock, &stock_built, sp)?;
    let s = parse(&slog.text);
    if !s.result_pass || !kernel_problems(&slog.text).is_empty() {
        bail!("the stock kernel's benchmark run failed: {:?}", s.failures);
    }
    let hp = Params {
        mode: "bench",
        ..Params::demo(10, 50)
    };
    let (hlog, _) = boot(&hotswap, &built, hp)?;
    let h = parse(&hlog.text);
    let problems = check(&h, &hlog, hp);
    if !problems.is_empty() {
        bail!("the benchmark run failed:\n  {}", problems.join("\n  "));
    }

    println!(
        "modswap experiment benchmark: QEMU TCG, -smp 2, Linux {}; the host is shared,",
        paths::KERNEL_VERSION
    );
    println!(
        "so compare ratios measured in one run (minimums for load vs swap; medians for steps)."
    );
    println!();
    println!(
        "Table 1. Loading time (min of 20 load/unload cycles, finit_module as seen by the caller)"
    );
    for m in ["fat", "vfat"] {
        let key = format!("load {m} ");
        let (ls, lh) = (
            bench_value(&s, &key, "min_us").context("stock load figure")?,
            bench_value(&h, &key, "min_us").context("hotswap load figure")?,
        );
        println!(
            "  {m:<5} stock kernel {ls:>7.0} us   hotswap kernel {lh:>7.0} us   ratio {:>6.1}%  (paper, vfat: 103.45%)",
            pct(lh, ls)
        );
    }

    let idle_swaps = |m: &str| -> Vec<BTreeMap<String, String>> {
        h.bench
            .iter()
            .filter(|l| l.starts_with(&format!("swap {m} ")))
            .map(|l| fields(l))
            .collect()
    };
    let col =
        |m: &str, key: &str| median(idle_swaps(m).iter().filter_map(|f| num(f, key)).collect());
    let load_vfat = bench_value(&h, "load vfat ", "min_us").unwrap_or(f64::NAN);
    let load_vfat_median = bench_value(&h, "load vfat ", "median_us").unwrap_or(f64::NAN);
    let swap_vfat = idle_swaps("vfat")
        .iter()
        .filter_map(|f| num(f, "us"))
        // f64::min ignores NaN: NaN when there is no swap, else the minimum.
        .fold(f64::NAN, f64::min);
    println!();
    println!(
        "Table 2. Loading and hotswapping vfat, idle, as seen by finit_module (min of 20 loads, of {} swaps; medians in brackets)",
        idle_swaps("vfat").len()
    );
    println!(
        "  loading {load_vfat:.0} us [{load_vfat_median:.0}], hotswapping {swap_vfat:.0} us [{:.0}]: {:.1}%  (paper: 138.77%)",
        col("vfat", "us"),
        pct(swap_vfat, load_vfat)
    );

    println!();
    println!(
        "Table 3. Steps of a vfat swap (idle, in-kernel, median of {})",
        idle_swaps("vfat").len()
    );
    let total = col("vfat", "total_ns");
    let parts = [
        ("resolution", col("vfat", "resolution_ns")),
        ("quiescence detection", col("vfat", "quiescence_ns")),
        ("relocation", col("vfat", "relocation_ns")),
        ("replace handler", col("vfat", "replace_ns")),
    ];
    let known: f64 = parts.iter().map(|p| p.1).sum();
    for (name, v) in parts {
        println!("  {name:<22} {:>9.1} us {:>5.1}%", v / 1e3, pct(v, total));
    }
    println!(
        "  {:<22} {:>9.1} us {:>5.1}%  (reading/checking the image, allocation, protections, sysfs)",
        "others",
        (total - known) / 1e3,
        pct(total - known, total)
    );
    println!(
        "  {:<22} {:>9.1} us  (paper: resolution 48.5%, quiescence 30.7%, others 20.8%)",
        "total",
        total / 1e3
    );
    println!(
        "  machine stopped {:.1} us; under load (experiment, median): vfat {:.1} ms, fat {:.1} ms, quiescence {:.1} us",
        col("vfat", "stopped_ns") / 1e3,
        swap_col(&h, "vfat", "total_ns") / 1e6,
        swap_col(&h, "fat", "total_ns") / 1e6,
        swap_col(&h, "fat", "quiescence_ns") / 1e3
    );

    println!();
    println!("Table 6. vfat's symbols: dynamic re-resolution (a fat swap re-links vfat) vs normal resolution");
    let relink = col("fat", "relink_ns");
    let normal = bench_word(&h, "resolve vfat").unwrap_or(f64::NAN);
    println!(
        "  dynamic re-resolution {:.1} us, normal resolution at load {:.1} us: {:.1}%  (paper: 35.03%)",
        relink / 1e3,
        normal / 1e3,
        pct(relink, normal)
    );

    println!();
    if let Some((b, d, a)) = rates(&h) {
        println!(
            "Requests/s with {} clients: {b:.1} before, {d:.1} while swapping ({:.0}% of before), {a:.1} after",
            hp.clients,
            pct(d, b)
        );
    }
    let min_rate = h
        .rps
        .iter()
        .filter(|(t, _)| {
            h.phases
                .get("swapping")
                .zip(h.phases.get("after"))
                .is_some_and(|(s, a)| *t >= s.ceil() && *t + 1.0 <= a.floor())
        })
        .map(|(_, n)| *n)
        .fold(f64::INFINITY, f64::min);
    println!("  the slowest second while swapping: {min_rate:.0} requests");

    println!();
    println!("Memory kept per module for hotswapping (paper: up to 2x the binary, the object file is kept)");
    for m in ["fat", "vfat", "msdos", "bfs"] {
        let kept = bench_word(&h, &format!("kept {m}")).unwrap_or(f64::NAN);
        let size = std::fs::metadata(built.ko(m, "v1")?)?.len() as f64;
        println!(
            "  {m:<5} {kept:>7.0} bytes for a {size:>7.0}-byte .ko ({:.1}%)",
            pct(kept, size)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_units_from_the_json_summary() {
        let one = r#"{"handler": "v2/vfat_modswap.c", "units": [
            {"define": null, "include": "vfat_modswap.c", "unit": "namei_vfat.c"}]}"#;
        let u = handler_units(one).unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].unit, "namei_vfat.c");
        assert_eq!(u[0].lines(), "\n#include \"vfat_modswap.c\"\n");
        let two = r#"{"units": [
            {"define": "MODSWAP_UNIT_cache", "include": "fat_modswap.c", "unit": "cache.c"},
            {"define": "MODSWAP_UNIT_inode", "include": "fat_modswap.c", "unit": "inode.c"}]}"#;
        let u = handler_units(two).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].unit, "inode.c");
        assert_eq!(
            u[1].lines(),
            "\n#define MODSWAP_UNIT_inode\n#include \"fat_modswap.c\"\n"
        );
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
    fn a_line_after_the_firmware_escapes_is_read() {
        let r = parse("Booting from ROM..\x1b[2JE2E-BENCH load fat min_us=5 median_us=6\n");
        assert_eq!(bench_value(&r, "load fat ", "min_us"), Some(5.0));
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
