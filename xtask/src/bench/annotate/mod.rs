//! `cargo xtask bench annotate`: how fast and how lean `modswap annotate` is.
//!
//! 1. fs/fat of the hotswap tree (built by `cargo xtask kernel`): the wall
//!    time and peak memory of `modswap annotate fs/fat --dry-run` (release
//!    build; everything but writing the files), beside the wall time Kbuild
//!    takes to compile the same files (a copy of fs/fat built with
//!    `make -C <tree> M=<copy> modules`, ccache off, all CPUs), as a ratio
//!    measured in one run. Targets: ratio <= 0.5, peak memory < 500 MB.
//!    `modswap annotate --full-parse` (header function bodies not folded,
//!    see annotate/source/src/fold.rs) is measured beside it, to show
//!    what folding buys.
//! 2. Every module directory under fs/ of a tree configured with Debian's
//!    config (`~/.cache/modswap/linux-6.12.117-fsbench`, prepared once:
//!    unpack, Debian's .config, `make modules_prepare`). Its compile commands
//!    come from Kbuild without compiling: `make -n fs/` prints each
//!    object's rule, including the exact command it hands to fixdep, which
//!    the bench saves as the `.cmd` file Kbuild would have written, with
//!    the dependency list a build leaves there (each unit preprocessed
//!    once, `-E`, for its `-MMD` output; annotate folds the header bodies
//!    of the files it names from the first parse on). Then
//!    `modswap annotate <dir> --dry-run --format json -j1` runs on every
//!    module directory, two at a time (both cores); the bench prints how
//!    many modules and globals it classified, which directories it could
//!    not analyse and why, and the time taken.

use crate::paths;
use crate::util::{output, run, write_atomic, Cmd};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod fs_wide;
mod fsbench;

use fs_wide::fs_wide;

#[derive(clap::Args)]
pub struct Args {
    /// Runs of each fs/fat measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Only the fs/fat comparison.
    #[arg(long)]
    pub skip_fs: bool,
    /// Only the run over every fs/ module directory.
    #[arg(long)]
    pub skip_fat: bool,
}

pub fn run_bench(args: &Args) -> Result<()> {
    let modswap = build_modswap()?;
    if !args.skip_fat {
        fat(&modswap, args.runs.max(1))?;
    }
    if !args.skip_fs {
        fs_wide(&modswap)?;
    }
    Ok(())
}

/// Builds the release binary the benchmark measures.
fn build_modswap() -> Result<PathBuf> {
    run(Cmd::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "-p", "modswap-cli"])
        .current_dir(paths::repo_root()))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::repo_root().join("target"));
    Ok(target.join("release/modswap"))
}

/// A finished child: its wall time, peak resident memory and exit status.
pub(super) struct Measured {
    wall: Duration,
    /// User + system time of the command and the children it waited for.
    cpu: Duration,
    max_rss_kb: u64,
    status: i32,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Killed for running longer than the timeout.
    timed_out: bool,
}

/// How long one directory of the fs/-wide run may take before the bench
/// kills it and counts it as not analysed (the analysis has its own
/// resource budget; this guards against anything else, e.g. libclang).
pub(super) const DIR_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Runs `cmd`, collecting output, and reaps it with wait4() for its peak RSS.
pub(super) fn measure(cmd: Command) -> Result<Measured> {
    measure_with_timeout(cmd, None)
}

/// [`measure`], killing the command (SIGKILL) after `timeout`.
pub(super) fn measure_with_timeout(
    mut cmd: Command,
    timeout: Option<Duration>,
) -> Result<Measured> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the measured command")?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = timeout.map(|limit| {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            while start.elapsed() < limit {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if !done.load(Ordering::SeqCst) {
                killed.store(true, Ordering::SeqCst);
                // SAFETY: plain kill(2) of our child. `done` is set right
                // after wait4 returns, so the pid can only have been reaped
                // (and reused) within that instant.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    });
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (Child::wait is never
    // called); the out-pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    done.store(true, Ordering::SeqCst);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let (code, signal) = if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status), None)
    } else if libc::WIFSIGNALED(status) {
        (-1, Some(libc::WTERMSIG(status)))
    } else {
        (-1, None)
    };
    // The child is reaped; dropping `child` does not wait again.
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
        status: code,
        signal,
        stdout,
        stderr,
        timed_out: killed.load(Ordering::SeqCst),
    })
}

pub(super) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Part 1: fs/fat against Kbuild.
fn fat(modswap: &Path, runs: usize) -> Result<()> {
    let tree = paths::cache_dir().join(format!("linux-{}", paths::KERNEL_VERSION));
    let fat = tree.join("fs/fat");
    if !fat.join(".inode.o.cmd").exists() {
        bail!(
            "{} is not built: run `cargo xtask kernel` first (the benchmark reads Kbuild's .cmd files there)",
            fat.display()
        );
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // A copy for Kbuild to compile, so the shared tree is never touched.
    let tmp = tempdir()?;
    let copy = tmp.join("fat");
    std::fs::create_dir_all(&copy)?;
    let sources = copy_sources(&fat, &copy)?;
    let kbuild = |target: &str| kbuild_command(&tree, &copy, ncpu, target);
    eprintln!("bench annotate: fs/fat, {runs} run(s) of each");
    let mut annotate_times = Vec::new();
    let mut kbuild_times = Vec::new();
    let mut annotate_cpu = Vec::new();
    let mut kbuild_cpu = Vec::new();
    let mut full_times = Vec::new();
    let mut peak_kb = 0;
    let mut globals = 0;
    let annotate = |extra: &[&str]| -> Result<Measured> {
        let mut c = Command::new(modswap);
        c.arg("annotate")
            .arg(&fat)
            .args(["--dry-run", "--format", "json"])
            .args(extra);
        let m = measure(c)?;
        if m.status != 0 {
            bail!(
                "modswap annotate fs/fat failed:\n{}",
                String::from_utf8_lossy(&m.stderr)
            );
        }
        Ok(m)
    };
    for i in 0..runs {
        let m = annotate(&[])?;
        globals = count_globals(&m.stdout)?.1;
        let full = annotate(&["--full-parse"])?;
        if full.stdout != m.stdout {
            bail!("modswap annotate fs/fat --full-parse reports something else than without it");
        }
        full_times.push(full.wall);
        annotate_times.push(m.wall);
        annotate_cpu.push(m.cpu);
        peak_kb = peak_kb.max(m.max_rss_kb);
        let clean = measure(kbuild("clean"))?;
        if clean.status != 0 {
            bail!(
                "make clean failed: {}",
                String::from_utf8_lossy(&clean.stderr)
            );
        }
        let k = measure(kbuild("modules"))?;
        if k.status != 0 {
            bail!(
                "Kbuild of the fs/fat copy failed:\n{}",
                String::from_utf8_lossy(&k.stderr)
            );
        }
        kbuild_times.push(k.wall);
        kbuild_cpu.push(k.cpu);
        eprintln!(
            "  run {}: annotate {} ({} CPU; --full-parse {}), Kbuild {} ({} CPU)",
            i + 1,
            secs(m.wall),
            secs(m.cpu),
            secs(full.wall),
            secs(k.wall),
            secs(k.cpu)
        );
    }
    let a = median(annotate_times);
    let k = median(kbuild_times);
    let full = median(full_times);
    let (ac, kc) = (median(annotate_cpu), median(kbuild_cpu));
    let ratio = a.as_secs_f64() / k.as_secs_f64();
    let cpu_ratio = ac.as_secs_f64() / kc.as_secs_f64();
    let peak_mb = peak_kb as f64 / 1024.0;
    println!("annotate fs/fat (fat, vfat, msdos: {sources} C files, {globals} globals)");
    println!(
        "  modswap annotate --dry-run:  {} wall, {} CPU (medians of {runs}), peak memory {:.0} MB",
        secs(a),
        secs(ac),
        peak_mb
    );
    println!(
        "  Kbuild compile, same files:  {} wall, {} CPU (medians of {runs}; make -j{ncpu} M=<copy> modules, ccache off; includes objtool, modpost and linking)",
        secs(k),
        secs(kc)
    );
    println!(
        "  annotate --full-parse:       {} wall (no folded header bodies; same report), ratio to Kbuild {:.2}",
        secs(full),
        full.as_secs_f64() / k.as_secs_f64()
    );
    println!(
        "  ratio annotate/Kbuild:       {ratio:.2} (target <= 0.50: {})",
        if ratio <= 0.5 { "met" } else { "MISSED" }
    );
    println!("  ratio of CPU time:           {cpu_ratio:.2} (less sensitive to other load on the machine)");
    println!(
        "  peak memory:                 {peak_mb:.0} MB (target < 500 MB: {})",
        if peak_mb < 500.0 { "met" } else { "MISSED" }
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Copies what Kbuild needs of `fat` into `copy`; returns how many C files
/// Kbuild compiles for this configuration.
fn copy_sources(fat: &Path, copy: &Path) -> Result<usize> {
    let copied = crate::util::copy_module_sources(fat, copy)?;
    // The C files Kbuild compiles for this configuration.
    let compiled = |name: &&String| {
        name.ends_with(".c")
            && fat
                .join(format!(".{}.o.cmd", name.trim_end_matches(".c")))
                .exists()
    };
    Ok(copied.iter().filter(compiled).count())
}

/// `make -C <tree> M=<copy> -j<ncpu> <target>`, ccache off.
fn kbuild_command(tree: &Path, copy: &Path, ncpu: usize, target: &str) -> Command {
    let path_without_ccache: String = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.contains("ccache"))
        .collect::<Vec<_>>()
        .join(":");
    let mut c = Command::new("make");
    c.arg("-C")
        .arg(tree)
        .arg(format!("M={}", copy.display()))
        .arg(format!("-j{ncpu}"))
        .arg(format!(
            "KCFLAGS=-I{}",
            paths::repo_root().join("loader/include").display()
        ))
        .arg(target)
        .env("PATH", &path_without_ccache)
        .env("CCACHE_DISABLE", "1");
    c
}

/// (modules, globals, per-class counts) of a JSON report.
pub(super) fn count_globals(json: &[u8]) -> Result<(usize, usize, BTreeMap<String, usize>)> {
    let v: serde_json::Value = serde_json::from_slice(json).context("the report is not JSON")?;
    let modules = v["modules"]
        .as_array()
        .context("no modules in the report")?;
    let mut classes = BTreeMap::new();
    let mut n = 0;
    for m in modules {
        for g in m["globals"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            n += 1;
            *classes
                .entry(g["class"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
    }
    Ok((modules.len(), n, classes))
}

pub(super) fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("modswap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
