//! What a run's serial log says (`E2E-*` lines), what fails the
//! experiment, and the demo's summary.

use super::*;

/// `key=value` words of a line.
pub(crate) fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn num(map: &BTreeMap<String, String>, key: &str) -> Option<f64> {
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

pub(crate) fn swap_col(r: &Report, module: &str, key: &str) -> f64 {
    median(
        r.swaps
            .iter()
            .filter(|s| s.module == module)
            .filter_map(|s| num(&s.fields, key))
            .collect(),
    )
}

/// The demo's summary of a checked run.
pub(crate) fn summary(r: &Report, p: Params, fsck: &[(String, String)]) {
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
