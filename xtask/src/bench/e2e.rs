//! `cargo xtask bench e2e`: the experiment's figures (the paper's tables 1-3
//! and 6): loading on the stock vs the hotswap kernel, swap time and its
//! breakdown, vfat's re-resolution vs its resolution, memory kept.

use crate::e2e::{
    boot, build, build_stock, check, fields, modswap_binary, num, parse, rates, swap_col, Params,
    Report,
};
use crate::kernel::Variant;
use crate::paths;
use crate::qemu::kernel_problems;
use crate::util::{median, pct, work_dir};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

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
    loading(&s, &h)?;
    swapping(&h);
    under_load(&h, hp, &built)
}

/// Table 1: loading on the stock vs the hotswap kernel.
fn loading(s: &Report, h: &Report) -> Result<()> {
    println!();
    println!(
        "Table 1. Loading time (min of 20 load/unload cycles, finit_module as seen by the caller)"
    );
    for m in ["fat", "vfat"] {
        let key = format!("load {m} ");
        let (ls, lh) = (
            bench_value(s, &key, "min_us").context("stock load figure")?,
            bench_value(h, &key, "min_us").context("hotswap load figure")?,
        );
        println!(
            "  {m:<5} stock kernel {ls:>7.0} us   hotswap kernel {lh:>7.0} us   ratio {:>6.1}%  (paper, vfat: 103.45%)",
            pct(lh, ls)
        );
    }
    Ok(())
}

/// Tables 2, 3 and 6: an idle vfat swap against a load, its steps, and
/// vfat's re-resolution against its resolution.
fn swapping(h: &Report) {
    let idle_swaps = |m: &str| -> Vec<BTreeMap<String, String>> {
        h.bench
            .iter()
            .filter(|l| l.starts_with(&format!("swap {m} ")))
            .map(|l| fields(l))
            .collect()
    };
    let col =
        |m: &str, key: &str| median(idle_swaps(m).iter().filter_map(|f| num(f, key)).collect());
    let load_vfat = bench_value(h, "load vfat ", "min_us").unwrap_or(f64::NAN);
    let load_vfat_median = bench_value(h, "load vfat ", "median_us").unwrap_or(f64::NAN);
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
    print!(
        "{}",
        super::steps(
            total,
            &parts,
            9,
            (
                "others",
                " (reading/checking the image, allocation, protections, sysfs)"
            )
        )
    );
    println!(
        "  {:<22} {:>9.1} us  (paper: resolution 48.5%, quiescence 30.7%, others 20.8%)",
        "total",
        total / 1e3
    );
    println!(
        "  machine stopped {:.1} us; under load (experiment, median): vfat {:.1} ms, fat {:.1} ms, quiescence {:.1} us",
        col("vfat", "stopped_ns") / 1e3,
        swap_col(h, "vfat", "total_ns") / 1e6,
        swap_col(h, "fat", "total_ns") / 1e6,
        swap_col(h, "fat", "quiescence_ns") / 1e3
    );

    println!();
    println!("Table 6. vfat's symbols: dynamic re-resolution (a fat swap re-links vfat) vs normal resolution");
    let relink = col("fat", "relink_ns");
    let normal = bench_word(h, "resolve vfat").unwrap_or(f64::NAN);
    println!(
        "  dynamic re-resolution {:.1} us, normal resolution at load {:.1} us: {:.1}%  (paper: 35.03%)",
        relink / 1e3,
        normal / 1e3,
        pct(relink, normal)
    );
}

/// Requests per second around the swaps, and the memory kept per module.
fn under_load(h: &Report, hp: Params, built: &crate::e2e::Built) -> Result<()> {
    println!();
    if let Some((b, d, a)) = rates(h) {
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
        let kept = bench_word(h, &format!("kept {m}")).unwrap_or(f64::NAN);
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
    fn a_line_after_the_firmware_escapes_is_read() {
        let r = parse("Booting from ROM..\x1b[2JE2E-BENCH load fat min_us=5 median_us=6\n");
        assert_eq!(bench_value(&r, "load fat ", "min_us"), Some(5.0));
    }
}
