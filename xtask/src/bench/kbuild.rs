//! `cargo xtask bench kbuild`: what the Kbuild fragment
//! (`templates/kbuild/modswap.mk`) costs, and what re-parsing only what an
//! edit touches saves.
//!
//! Takes fs/fat of Linux 6.12 (fat, vfat, msdos: 9 C files) from Debian's
//! linux-source tarball into `target/bench-kbuild/fat`, hooks it up with
//! `modswap kbuild`, and times, with make -j2 against Debian's headers, one
//! run of each step: the plain build, the first `modswap-annotate` (every
//! unit parsed), `modswap-check` with nothing changed, after an edit of one
//! C file, after an edit of the header every unit includes, and the same
//! edit of one C file with the plain build only; then `modswap annotate
//! --check` parsing every unit against reading the saved parses. Wall-clock
//! seconds of one run each on a shared machine: compare the ratios.

use crate::paths;
use crate::quickstart::modswap_binary;
use crate::util::{output, run, Cmd};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

/// Runs `cmd` and returns (seconds, the number of units modswap parsed,
/// from Kbuild's `MODSWAP <file>.c` lines).
fn timed(cmd: Cmd) -> Result<(f64, usize)> {
    let t = Instant::now();
    let out = output(cmd)?;
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text
        .lines()
        .filter(|l| l.trim_start().starts_with("MODSWAP ") && l.trim_end().ends_with(".c"))
        .count();
    Ok((secs, parsed))
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut t = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    t.push_str(text);
    std::fs::write(path, t).with_context(|| path.display().to_string())?;
    Ok(())
}

pub fn bench() -> Result<()> {
    let modswap = modswap_binary()?;
    let base = paths::repo_root().join("target/bench-kbuild");
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    std::fs::create_dir_all(&base)?;
    run(Cmd::new("tar")
        .args(["-xJf", paths::SOURCE_TARBALL, "-C"])
        .arg(&base)
        .args(["--strip-components=2", "linux-source-6.12/fs/fat"]))?;
    let dir = base.join("fat");
    let lines = output(Cmd::new(&modswap).arg("kbuild").arg(&dir))?;
    append(
        &dir.join("Makefile"),
        &String::from_utf8_lossy(&lines.stdout),
    )?;

    let kdir = paths::DEBIAN_HEADERS;
    let plain = || {
        Cmd::new("make")
            .args(["-C", kdir])
            .arg(format!("M={}", dir.display()))
            .arg("-j2")
    };
    let target = |t: &str| {
        Cmd::new("make")
            .arg("-C")
            .arg(&dir)
            .arg(format!("KDIR={kdir}"))
            .args(["-j2", t])
    };
    let check = |from_facts: bool| {
        let c = Cmd::new(&modswap)
            .arg("annotate")
            .arg(&dir)
            .args(["--kdir", kdir, "--check", "--jobs", "2"]);
        if from_facts {
            c.arg("--from-facts")
        } else {
            c
        }
    };

    let mut rows: Vec<(String, f64, Option<usize>)> = Vec::new();
    let (t, _) = timed(plain())?;
    rows.push(("plain build (make -C KDIR M=DIR)".into(), t, None));
    let (t, n) = timed(target("modswap-annotate"))?;
    rows.push(("modswap-annotate, first run".into(), t, Some(n)));
    let (t, n) = timed(target("modswap-check"))?;
    rows.push((
        "modswap-check after modswap-annotate's rewrite".into(),
        t,
        Some(n),
    ));
    let (t, n) = timed(target("modswap-check"))?;
    rows.push(("modswap-check, nothing changed".into(), t, Some(n)));
    append(&dir.join("namei_vfat.c"), "/* bench edit 1 */\n")?;
    let (t, n) = timed(target("modswap-check"))?;
    let one_file = t;
    rows.push((
        "modswap-check after editing namei_vfat.c".into(),
        t,
        Some(n),
    ));
    append(&dir.join("namei_vfat.c"), "/* bench edit 2 */\n")?;
    let (t, _) = timed(plain())?;
    let one_file_plain = t;
    rows.push(("plain build after editing namei_vfat.c".into(), t, None));
    append(&dir.join("fat.h"), "/* bench edit 3 */\n")?;
    let (t, n) = timed(target("modswap-check"))?;
    let all_files = t;
    rows.push(("modswap-check after editing fat.h".into(), t, Some(n)));
    let (t, _) = timed(check(false))?;
    let full = t;
    rows.push((
        "modswap annotate --check (parses every unit)".into(),
        t,
        None,
    ));
    let (t, _) = timed(check(true))?;
    let facts = t;
    rows.push(("modswap annotate --check --from-facts".into(), t, None));

    // The units of the modules this configuration builds: one facts file each.
    let units = std::fs::read_dir(&dir)?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".o.modswap"))
        })
        .count();
    if rows.iter().any(|(_, _, n)| n.is_some_and(|n| n > units)) {
        bail!("more units parsed than fs/fat has: {rows:?}");
    }
    println!(
        "bench kbuild: fs/fat of Linux 6.12 (fat, vfat, msdos: {units} C files), out of tree \
         against {kdir}, make -j2; one run each, wall clock"
    );
    for (what, t, n) in &rows {
        let parsed = n.map(|n| format!("{n} unit(s) parsed")).unwrap_or_default();
        println!("  {what:<48} {t:>7.2} s  {parsed}");
    }
    println!("ratios:");
    println!(
        "  check after a one-file edit / after a header edit:  {:.2}",
        one_file / all_files
    );
    println!(
        "  check after a one-file edit / plain build after one: {:.2}",
        one_file / one_file_plain
    );
    println!(
        "  module check from saved parses / parsing every unit: {:.3}",
        facts / full
    );
    Ok(())
}
