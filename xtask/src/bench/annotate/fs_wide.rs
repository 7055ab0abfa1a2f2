//! Part 2 of the benchmark: every module directory under fs/.

use super::fsbench::{module_dirs, prepare_fsbench};
use super::*;

/// Part 2: every module directory under fs/.
pub(super) fn fs_wide(modswap: &Path) -> Result<()> {
    let tree = prepare_fsbench()?;
    let dirs = module_directories(&tree);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let start = Instant::now();
    let results = annotate_all(modswap, &dirs, workers);
    let wall = start.elapsed();
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

/// The module directories under fs/ in this configuration (the rest
/// build nothing as a module).
fn module_directories(tree: &Path) -> Vec<PathBuf> {
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
    dirs
}

/// `modswap annotate --dry-run` on every directory, `workers` at a time;
/// the results sorted by directory.
fn annotate_all(
    modswap: &Path,
    dirs: &[PathBuf],
    workers: usize,
) -> Vec<(PathBuf, Result<Measured>)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(PathBuf, Result<Measured>)>> = Default::default();
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
    let mut results = results.into_inner().expect("threads joined");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}

/// One line that says why annotate failed, without per-file detail.
pub(super) fn failure_reason(stderr: &str) -> String {
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
