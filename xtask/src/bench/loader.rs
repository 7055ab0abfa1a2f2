//! `cargo xtask bench loader`: the loader benchmark, the stock vs the
//! hotswap kernel in QEMU, from the `MSW-BENCH` lines of the loader's
//! selftests (see `loadertest.rs`).

use crate::kernel::Variant;
use crate::loadertest::{bench_lines, boot, lookup, value};
use crate::util::{median, pct};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// `cargo xtask bench loader`: load time on the stock and the hotswap
/// kernel, swap time and its breakdown, the read() path before and after a
/// swap, and the memory kept for re-linking.
pub fn bench() -> Result<()> {
    let stock = crate::kernel::prepare(Variant::Stock)?;
    let hotswap = crate::kernel::prepare(Variant::Hotswap)?;
    let s = bench_lines(&boot(&stock, "bench", Duration::from_secs(900))?)?;
    let h = bench_lines(&boot(&hotswap, "bench", Duration::from_secs(900))?)?;

    println!("Loader benchmark: QEMU TCG, -smp 2. Times are emulated and the host is shared:");
    println!("ratios use the fastest of N runs (noise only adds time); medians in brackets.");
    println!();
    for (m, what) in [
        ("fat", "fat.ko (not hotswappable)"),
        ("v1", "msw_dev (hotswappable)"),
        ("msw_user_v1", "msw_user (uses msw_dev)"),
    ] {
        let (ls, lh) = (
            lookup(&s, "load", m, "min_ns")?,
            lookup(&h, "load", m, "min_ns")?,
        );
        let (ms, mh) = (
            lookup(&s, "load", m, "load_ns")?,
            lookup(&h, "load", m, "load_ns")?,
        );
        println!(
            "normal load of {what:<27} stock {:>6.0} us [{:.0}], hotswap kernel {:>6.0} us [{:.0}]: {:+.1}% (paper: +3.45%)",
            ls / 1e3,
            ms / 1e3,
            lh / 1e3,
            mh / 1e3,
            pct(lh - ls, ls)
        );
    }

    let swaps = h.get("swap").cloned().unwrap_or_default();
    if swaps.is_empty() {
        bail!("the hotswap kernel run reported no swaps");
    }
    let col = |name: &str| median(swaps.iter().filter_map(|l| value(l, name)).collect());
    let load = lookup(&h, "load", "v1", "min_ns")?;
    let syscall = lookup(&h, "swapcall", "", "min_ns")?;
    let syscall_median = lookup(&h, "swapcall", "", "swap_ns")?;
    let total = col("total_ns");
    println!();
    println!(
        "swap of msw_dev (v1 <-> v2, 1 user): {:.0} us [{:.0}] as seen by finit_module() = {:.0}% of its normal load (paper: 139%)",
        syscall / 1e3,
        syscall_median / 1e3,
        pct(syscall, load)
    );
    println!(
        "in-kernel breakdown, median of {} swaps, total {:.0} us:",
        swaps.len(),
        total / 1e3
    );
    let parts = [
        ("quiescence detection", col("quiescence_ns")),
        ("symbol resolution", col("resolution_ns")),
        ("relocation", col("relocation_ns")),
        ("re-linking users", col("relink_ns")),
        ("replace handler", col("replace_ns")),
    ];
    print!(
        "{}",
        super::steps(
            total,
            &parts,
            8,
            (
                "other",
                "(reading and checking the image, allocation, protections, sysfs)"
            )
        )
    );
    println!(
        "  machine stopped        {:>8.1} us (quiescence check, static sections, replace, re-link, merge)",
        col("stopped_ns") / 1e3
    );
    let resolve_user = lookup(&h, "resolve", "msw_user", "msw_user")?;
    println!(
        "re-linking msw_user took {:.0}% of its normal symbol resolution ({:.1} us) (paper: 35%)",
        pct(col("relink_ns"), resolve_user),
        resolve_user / 1e3
    );

    let min_of = |map: &BTreeMap<String, Vec<String>>, prefix: &str| -> f64 {
        map.get("read")
            .map(|v| {
                v.iter()
                    .filter(|l| l.starts_with(prefix))
                    .filter_map(|l| value(l, "read_ns"))
                    .fold(f64::INFINITY, f64::min)
            })
            .unwrap_or(f64::NAN)
    };
    let (rb, ra, rs) = (
        min_of(&h, "before"),
        min_of(&h, "after"),
        min_of(&s, "before"),
    );
    println!();
    println!(
        "read() of /dev/msw (v1): {rb:.0} ns before any swap, {ra:.0} ns after {} swaps: ratio {:.2}; stock kernel {rs:.0} ns: ratio {:.2}",
        2 * swaps.len(),
        ra / rb,
        ra / rs
    );

    println!();
    for (m, build) in [("msw_dev", "v1"), ("msw_user", "msw_user_v1")] {
        let kept = lookup(&h, "kept", m, m)?;
        let size = lookup(&h, "size", build, build)?;
        println!(
            "kept for hotswap/re-linking by {m:<8}: {kept:>6.0} bytes for a {size:.0}-byte .ko ({:.1}%)",
            pct(kept, size)
        );
    }
    Ok(())
}
