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
struct Measured {
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
const DIR_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Runs `cmd`, collecting output, and reaps it with wait4() for its peak RSS.
fn measure(cmd: Command) -> Result<Measured> {
    measure_with_timeout(cmd, None)
}

/// [`measure`], killing the command (SIGKILL) after `timeout`.
fn measure_with_timeout(mut cmd: Command, timeout: Option<Duration>) -> Result<Measured> {
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
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
    let mut sources = 0;
    for e in std::fs::read_dir(&fat)? {
        let p = e?.path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let keep = (name.ends_with(".c") && !name.ends_with(".mod.c"))
            || name.ends_with(".h")
            || name == "Makefile"
            || name == "Kconfig";
        if keep && p.is_file() {
            std::fs::copy(&p, copy.join(&name))?;
            // The C files Kbuild compiles for this configuration.
            let cmd = fat.join(format!(".{}.o.cmd", name.trim_end_matches(".c")));
            sources += (name.ends_with(".c") && cmd.exists()) as usize;
        }
    }
    let path_without_ccache: String = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.contains("ccache"))
        .collect::<Vec<_>>()
        .join(":");
    let kbuild = |target: &str| {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(&tree)
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
    };
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

/// (modules, globals, per-class counts) of a JSON report.
fn count_globals(json: &[u8]) -> Result<(usize, usize, BTreeMap<String, usize>)> {
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

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("modswap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The tree configured with Debian's config, for the fs/-wide run.
fn fsbench_tree() -> PathBuf {
    paths::cache_dir().join(format!("linux-{}-fsbench", paths::KERNEL_VERSION))
}

/// Unpacks and prepares the fs-bench tree once (stamped), then synthesizes
/// the .cmd files of every fs/ object from `make -n fs/`.
fn prepare_fsbench() -> Result<PathBuf> {
    let tree = fsbench_tree();
    let stamps = tree.join(".modswap");
    if !stamps.join("prepared").exists() {
        eprintln!(
            "bench annotate: preparing {} (Debian's config, modules_prepare; once)",
            tree.display()
        );
        std::fs::create_dir_all(&tree)?;
        if !tree.join("Makefile").exists() {
            run(Cmd::new("tar")
                .args(["xf", paths::SOURCE_TARBALL, "--strip-components=1", "-C"])
                .arg(&tree))?;
        }
        let config = Path::new(paths::DEBIAN_HEADERS).join(".config");
        std::fs::copy(&config, tree.join(".config"))
            .with_context(|| format!("copying {}", config.display()))?;
        // No signing keys or BTF (pahole) are needed to get compile commands.
        run(Cmd::new(tree.join("scripts/config"))
            .arg("--file")
            .arg(tree.join(".config"))
            .args([
                "-d",
                "DEBUG_INFO_BTF",
                "-d",
                "MODULE_SIG",
                "-d",
                "MODULE_SIG_ALL",
                "--set-str",
                "MODULE_SIG_KEY",
                "",
                "--set-str",
                "SYSTEM_TRUSTED_KEYS",
                "",
                "--set-str",
                "SYSTEM_REVOCATION_KEYS",
                "",
            ]))?;
        let make = || {
            Cmd::new("nice")
                .args(["-n", "10", "make", "-C"])
                .arg(&tree)
                .arg("ARCH=x86_64")
        };
        run(make().arg("olddefconfig"))?;
        run(make()
            .arg(format!(
                "-j{}",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            ))
            .arg("modules_prepare"))?;
        write_atomic(&stamps.join("prepared"), b"prepared\n")?;
    }
    if !stamps.join("cmd-files").exists() {
        eprintln!("bench annotate: asking Kbuild for the fs/ compile commands (make -n fs/)");
        let out = output(
            Cmd::new("make")
                .arg("-C")
                .arg(&tree)
                .args(["ARCH=x86_64", "-n", "fs/"]),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in text.lines() {
            for (target, cmd) in fixdep_calls(line) {
                if !target.starts_with("fs/") || !target.ends_with(".o") {
                    continue;
                }
                let t = Path::new(&target);
                let name = t.file_name().unwrap_or_default().to_string_lossy();
                let cmd_file = tree.join(t.with_file_name(format!(".{name}.cmd")));
                write_atomic(
                    &cmd_file,
                    format!("savedcmd_{target} := {cmd}\n").as_bytes(),
                )?;
                n += 1;
            }
        }
        if n == 0 {
            bail!(
                "`make -n fs/` in {} printed no compile commands",
                tree.display()
            );
        }
        write_atomic(&stamps.join("cmd-files"), format!("{n}\n").as_bytes())?;
    }
    if !stamps.join("dependency-lists").exists() {
        add_dependency_lists(&tree)?;
    }
    Ok(tree)
}

/// Adds to each synthesized `.cmd` file under fs/ the dependency list a
/// build would have left there (`deps_<object> := ...`, what fixdep makes
/// of the compiler's `-MMD` output): the command is run once as a
/// preprocessor (`-E`), which writes the `.d` file. A unit that does not
/// preprocess (a generated header that only a real build makes) keeps no
/// list. Runs on every CPU; done once (stamped).
fn add_dependency_lists(tree: &Path) -> Result<()> {
    let mut cmd_files = Vec::new();
    let mut stack = vec![tree.join("fs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if name.starts_with('.') && name.ends_with(".o.cmd") {
                cmd_files.push(path);
            }
        }
    }
    cmd_files.sort();
    eprintln!(
        "bench annotate: preprocessing {} fs/ units once for their dependency lists",
        cmd_files.len()
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(cmd_file) = cmd_files.get(i) else {
                    break;
                };
                if dependency_list(tree, cmd_file).is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let failed = failed.into_inner();
    eprintln!("bench annotate: {failed} unit(s) did not preprocess and have no dependency list");
    write_atomic(
        &tree.join(".modswap/dependency-lists"),
        format!("{} {failed}\n", cmd_files.len()).as_bytes(),
    )
}

/// One `.cmd` file: see [`add_dependency_lists`].
fn dependency_list(tree: &Path, cmd_file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(cmd_file)?;
    if text.contains("\ndeps_") {
        return Ok(());
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("savedcmd_"))
        .context("no savedcmd line")?;
    let (target, cmd) = line["savedcmd_".len()..]
        .split_once(" := ")
        .context("no `:=`")?;
    let depfile = cmd
        .split_whitespace()
        .find_map(|w| w.strip_prefix("-Wp,-MMD,"))
        .context("no -Wp,-MMD")?;
    let first = first_command(cmd)
        .replace(&format!(" -o {target} "), " -o /dev/null ")
        .replace(" -c ", " -E ");
    let status = Command::new("sh")
        .arg("-c")
        .arg(first)
        .current_dir(tree)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let dep_path = tree.join(depfile);
    if !status.success() {
        let _ = std::fs::remove_file(&dep_path);
        bail!("{target} does not preprocess");
    }
    let deps = std::fs::read_to_string(&dep_path)?;
    std::fs::remove_file(&dep_path)?;
    let joined = deps.replace("\\\n", " ");
    let (_, files) = joined.split_once(':').context("no `:` in the .d file")?;
    let mut out = format!("{line}\n\ndeps_{target} := \\\n");
    for f in files.split_whitespace().filter(|f| !f.ends_with(".c")) {
        out.push_str(&format!("  {f} \\\n"));
    }
    out.push('\n');
    write_atomic(cmd_file, out.as_bytes())
}

/// `cmd` up to its first `;` outside quotes (the compiler; objtool and
/// the like follow).
fn first_command(cmd: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in cmd.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => return &cmd[..i],
            _ => {}
        }
    }
    cmd
}

/// The `scripts/basic/fixdep <depfile> <target> '<command>'` calls of one
/// line of `make -n` output: (target, command as fixdep receives it).
fn fixdep_calls(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("scripts/basic/fixdep ") {
        rest = &rest[at + "scripts/basic/fixdep ".len()..];
        let mut words = rest.splitn(3, ' ');
        let (Some(_dep), Some(target), Some(tail)) = (words.next(), words.next(), words.next())
        else {
            break;
        };
        let Some((cmd, used)) = shell_single_quoted(tail) else {
            break;
        };
        out.push((target.to_string(), cmd));
        rest = &tail[used..];
    }
    out
}

/// Reads one shell word made of '...' pieces and \' escapes (Kbuild writes
/// a single quote as '\''). Returns the word and the bytes consumed.
fn shell_single_quoted(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = String::new();
    if b.first() != Some(&b'\'') {
        return None;
    }
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let end = s[i + 1..].find('\'')? + i + 1;
                out.push_str(&s[i + 1..end]);
                i = end + 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'\'') => {
                out.push('\'');
                i += 2;
            }
            _ => break,
        }
    }
    Some((out, i))
}

/// Directories under fs/ with a Kbuild file or Makefile, sorted.
fn module_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("Makefile").exists() || d.join("Kbuild").exists() {
            out.push(d.clone());
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Part 2: every module directory under fs/.
fn fs_wide(modswap: &Path) -> Result<()> {
    let tree = prepare_fsbench()?;
    // Module directories in this configuration (the rest build nothing as a module).
    let mut dirs = Vec::new();
    let mut not_modules = 0;
    for d in module_dirs(&tree.join("fs")) {
        match modswap_kbuild::discover(&d, None) {
            Ok(_) => dirs.push(d),
            Err(_) => not_modules += 1,
        }
    }
    eprintln!(
        "bench annotate: {} module directories under fs/ ({} others build no module in this configuration)",
        dirs.len(),
        not_modules
    );
    let start = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(PathBuf, Result<Measured>)>> = Default::default();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(d) = dirs.get(i) else { break };
                let mut c = Command::new(modswap);
                c.arg("annotate")
                    .arg(d)
                    .args(["--dry-run", "--format", "json", "-j1"]);
                let m = measure_with_timeout(c, Some(DIR_TIMEOUT));
                results.lock().expect("no panics").push((d.clone(), m));
            });
        }
    });
    let wall = start.elapsed();
    let mut results = results.into_inner().expect("threads joined");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut ok_dirs, mut modules, mut globals) = (0, 0, 0);
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cpu = Duration::ZERO;
    let mut cpu_time = Duration::ZERO;
    let mut peak = (0u64, String::new());
    let mut slowest = (Duration::ZERO, String::new());
    for (d, m) in &results {
        let rel = d.strip_prefix(&tree).unwrap_or(d).display().to_string();
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                failures
                    .entry(format!("could not run: {e}"))
                    .or_default()
                    .push(rel);
                continue;
            }
        };
        cpu += m.wall;
        cpu_time += m.cpu;
        if m.max_rss_kb > peak.0 {
            peak = (m.max_rss_kb, rel.clone());
        }
        if m.wall > slowest.0 {
            slowest = (m.wall, rel.clone());
        }
        if m.timed_out {
            failures
                .entry(format!(
                    "timed out: killed after {} s",
                    DIR_TIMEOUT.as_secs()
                ))
                .or_default()
                .push(rel);
            continue;
        }
        if let Some(sig) = m.signal {
            failures
                .entry(format!("CRASH: killed by signal {sig}"))
                .or_default()
                .push(rel);
            continue;
        }
        if m.status != 0 {
            failures
                .entry(failure_reason(&String::from_utf8_lossy(&m.stderr)))
                .or_default()
                .push(rel);
            continue;
        }
        match count_globals(&m.stdout) {
            Ok((mm, g, c)) => {
                ok_dirs += 1;
                modules += mm;
                globals += g;
                for (k, v) in c {
                    *classes.entry(k).or_default() += v;
                }
            }
            Err(e) => failures
                .entry(format!("bad report: {e}"))
                .or_default()
                .push(rel),
        }
    }
    let failed: usize = failures.values().map(Vec::len).sum();
    let crashes: usize = failures
        .iter()
        .filter(|(k, _)| k.starts_with("CRASH"))
        .map(|(_, v)| v.len())
        .sum();
    println!(
        "annotate every module directory under fs/ ({}, Debian's config; compile commands from `make -n fs/`)",
        tree.display()
    );
    println!(
        "  directories: {} analysed, {} could not be analysed, {} crashed",
        ok_dirs, failed, crashes
    );
    println!(
        "  modules: {modules}; globals classified: {globals} ({})",
        classes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  time: {} wall with {workers} workers ({} of work, {} CPU, {:.1}x parallel); slowest {} ({}); peak memory {:.0} MB ({})",
        secs(wall),
        secs(cpu),
        secs(cpu_time),
        cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        slowest.1,
        secs(slowest.0),
        peak.0 as f64 / 1024.0,
        peak.1
    );
    if !failures.is_empty() {
        println!("  could not analyse:");
        for (why, ds) in &failures {
            println!("    {} x {why}", ds.len());
            for d in ds {
                println!("      {d}");
            }
        }
    }
    if crashes > 0 {
        bail!("{crashes} directories crashed modswap annotate");
    }
    Ok(())
}

/// One line that says why annotate failed, without per-file detail.
fn failure_reason(stderr: &str) -> String {
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .trim_start_matches("modswap: error: ");
    if let Some(at) = first.find("libclang found") {
        // "libclang found N error(s) in module M; ...": the first error.
        let detail = stderr
            .lines()
            .nth(1)
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        let msg = detail.splitn(4, ':').nth(3).unwrap_or("").trim();
        return format!(
            "libclang errors ({}), e.g. {msg}",
            &first[at..].split(';').next().unwrap_or("")
        );
    }
    if first.contains("not built yet") {
        return "Kbuild gave no compile command for some object (generated source or not built in this configuration)".into();
    }
    first.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_command_ends_at_an_unquoted_semicolon() {
        assert_eq!(
            first_command("gcc -DA='\"a;b\"' -c x.c ; objtool x.o"),
            "gcc -DA='\"a;b\"' -c x.c "
        );
        assert_eq!(first_command("gcc -c x.c"), "gcc -c x.c");
    }

    #[test]
    fn fixdep_commands_come_out_unquoted() {
        let line = "set -e; echo '  CC [M]  fs/a/b.o'; gcc -c -o fs/a/b.o fs/a/b.c; scripts/basic/fixdep fs/a/.b.o.d fs/a/b.o 'gcc -DKBUILD_MODNAME='\\''\"b\"'\\'' -c -o fs/a/b.o fs/a/b.c' > fs/a/.b.o.cmd; rm -f fs/a/.b.o.d";
        assert_eq!(
            fixdep_calls(line),
            [(
                "fs/a/b.o".to_string(),
                "gcc -DKBUILD_MODNAME='\"b\"' -c -o fs/a/b.o fs/a/b.c".to_string()
            )]
        );
    }
}
