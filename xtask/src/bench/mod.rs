//! `cargo xtask bench ...`: speed and memory figures (never part of the
//! tests), one module per benchmark; the tables they share are here.
//!
//! - [`loader`]: the loader, stock vs hotswap kernel in QEMU;
//! - [`e2e`]: the experiment's figures (the paper's tables);
//! - [`kbuild`]: the Kbuild fragment on fs/fat;
//! - [`annotate`]: speed and memory of `modswap annotate`;
//! - [`coverage`]: how many of Debian's modules carry a section the loader
//!   refuses.

pub mod annotate;
pub mod coverage;
pub mod e2e;
pub mod kbuild;
pub mod loader;

use crate::util::pct;
use std::fmt::Write as _;

/// A swap's steps as a table: each step's time (ns in, us out) and its
/// share of `total`, then the rest, `other` (its label and a note on what
/// it holds). `width`: of the time column.
pub fn steps(total: f64, parts: &[(&str, f64)], width: usize, other: (&str, &str)) -> String {
    let mut s = String::new();
    let known: f64 = parts.iter().map(|p| p.1).sum();
    let rows = parts.iter().copied().chain([(other.0, total - known)]);
    for (i, (name, v)) in rows.enumerate() {
        let note = if i == parts.len() {
            format!(" {}", other.1)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {name:<22} {:>width$.1} us {:>5.1}%{note}",
            v / 1e3,
            pct(v, total)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn steps_table_adds_the_rest() {
        let t = super::steps(
            10_000.0,
            &[("a", 2_000.0), ("b", 3_000.0)],
            8,
            ("other", "(x)"),
        );
        assert_eq!(
            t,
            "  a                           2.0 us  20.0%\n  \
             b                           3.0 us  30.0%\n  \
             other                       5.0 us  50.0% (x)\n"
        );
    }
}
