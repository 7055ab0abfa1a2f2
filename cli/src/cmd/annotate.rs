//! `modswap annotate <dir>`: classify every global of a module directory
//! and mark the declarations that need a static address section.
//!
//! Stages ([`modswap_analyze::run`]): discover the directory's modules
//! (Kbuild), read Kbuild's saved compile commands, parse every C file with
//! libclang, analyse, plan the rewrite; then this command writes it (default), print it as a patch (`--patch`), only
//! check it (`--check`: exit 1 when the markers are stale), or only report
//! (`--dry-run`). The report (text or JSON) goes to stdout, except with
//! `--patch`, whose stdout is the diff, and `--check`, which prints only
//! the stale files (to stderr).
//!
//! Two hidden options serve the Kbuild fragment (`templates/kbuild/modswap.mk`),
//! which lets make decide what to parse again:
//! - `--parse-unit FILE.c` parses one C file of the directory (Kbuild must
//!   have compiled it; the other files need not be) and saves the result in
//!   its facts file, `.<object>.modswap`, then stops;
//! - `--from-facts` takes every unit from its facts file where that still
//!   describes the unit (same flags, same files), and parses the rest.

use super::{emit, exit_no, Format};
use anyhow::Result;
use modswap_analyze::{self as analyze, rewrite};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The module directory (e.g. fs/fat of a configured, built kernel
    /// tree, or an external module's directory).
    pub dir: PathBuf,
    /// Kernel build or headers directory, for an external module
    /// (/lib/modules/<release>/build, /usr/src/linux-headers-...).
    #[arg(long)]
    pub kdir: Option<PathBuf>,
    /// Print the rewrite as a unified diff instead of writing it.
    #[arg(long)]
    pub patch: bool,
    /// Change nothing; exit 1 when the source's markers are stale (what a
    /// rewrite would change), 0 when they are right.
    #[arg(long)]
    pub check: bool,
    /// Analyse and print the report, but write nothing (markers are shown
    /// as a rewrite would make them).
    #[arg(long, conflicts_with_all = ["patch", "check"])]
    pub dry_run: bool,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Parser threads (default: all CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Parse every C file with the headers' function bodies. By default the
    /// C files read the kernel headers with their function bodies folded
    /// away (the result is the same, the parse about 40% cheaper); this is
    /// the switch to rule that out.
    #[arg(long)]
    pub full_parse: bool,
    /// Parse only this C file of the directory and save the result for
    /// make (`.<object>.modswap`); no analysis, no report.
    #[arg(long, hide = true, value_name = "FILE.c", conflicts_with_all = ["check", "patch", "from_facts"])]
    pub parse_unit: Option<PathBuf>,
    /// Use the saved per-unit parses (`.<object>.modswap`) that are still
    /// current.
    #[arg(long, hide = true)]
    pub from_facts: bool,
    /// The command to suggest when the markers are stale (default: `modswap
    /// annotate <dir>`).
    #[arg(long, hide = true, value_name = "COMMAND")]
    pub fix_with: Option<String>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(unit) = &args.parse_unit {
        let dir = modswap_kbuild::discover(&args.dir, args.kdir.as_deref())?;
        modswap_source::saved::write_unit(&dir, unit)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opts = analyze::pipeline::Options {
        kdir: args.kdir.clone(),
        from_facts: args.from_facts,
        ..Default::default()
    };
    if let Some(j) = args.jobs {
        opts.parse.jobs = j.max(1);
    }
    opts.parse.fold_header_bodies = !args.full_parse;
    let run = analyze::run(&args.dir, &opts)?;
    let (analysis, plan) = (&run.analysis, &run.rewrite);

    if args.patch {
        emit(&plan.diff())?;
        return Ok(if args.check && plan.is_stale() {
            exit_no()
        } else {
            ExitCode::SUCCESS
        });
    }
    if args.check {
        let fix = args
            .fix_with
            .clone()
            .unwrap_or_else(|| format!("modswap annotate {}", args.dir.display()));
        for e in &plan.edits {
            eprintln!(
                "modswap: {}: modswap markers are stale; run `{fix}`",
                e.file
            );
        }
        for m in &analysis.modules {
            for g in &m.globals {
                let what = match plan.marker(&m.name, &g.key) {
                    Some(rewrite::Marker::Added { marker }) => format!("needs {marker}"),
                    Some(rewrite::Marker::Removed { marker }) => {
                        format!("has {marker}, which it no longer needs")
                    }
                    _ => continue,
                };
                eprintln!(
                    "modswap:   {}:{}: {} {what} (module {}: {})",
                    g.file, g.line, g.key, m.name, g.class
                );
            }
        }
        return Ok(if plan.is_stale() {
            exit_no()
        } else {
            ExitCode::SUCCESS
        });
    }
    // The report cross-checks the built objects with the sources they
    // were built from: before the rewrite, which makes every object older
    // than its sources.
    let rep = run.report();
    if !args.dry_run {
        plan.apply()?;
    }
    match args.format {
        Format::Text => emit(&rep.text(!args.dry_run))?,
        Format::Json => emit(&rep.json())?,
    }
    Ok(ExitCode::SUCCESS)
}
