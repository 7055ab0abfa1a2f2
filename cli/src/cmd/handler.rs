//! `modswap handler --old <dir|rev> --new <dir> [--kdir K] [--module M]
//! [-o FILE] [--force]`: generate the replace handler of a module from two
//! versions of its source, for review.
//!
//! Exit 0: the handler was written (or was already up to date); its TODOs
//! are listed on stdout. Exit 2: bad input (a version that does not parse,
//! two unrelated modules, a missing old version, a pair that cannot be
//! swapped, a reviewed handler that regenerating would damage); nothing is
//! written.

use anyhow::Result;
use modswap_codegen::{plan, version, write_handler};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The loaded version: a module directory, or a git revision (tag,
    /// commit, HEAD~1) of the repository that holds --new.
    #[arg(long)]
    pub old: String,
    /// The new version's module directory, built with Kbuild.
    #[arg(long)]
    pub new: PathBuf,
    /// The kernel build or headers directory (external modules).
    #[arg(long)]
    pub kdir: Option<PathBuf>,
    /// The module, when the directory makes several.
    #[arg(long)]
    pub module: Option<String>,
    /// The output file [default: <new>/<module>_modswap.c].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite the output even if it was not generated, was edited
    /// outside its regions, or holds filled-in regions the new handler has
    /// no place for.
    #[arg(long)]
    pub force: bool,
    /// libclang threads [default: the number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let req = version::Request {
        old: args.old.clone(),
        new: args.new.clone(),
        kdir: args.kdir.clone(),
        module: args.module.clone(),
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
    };
    let pair = version::load(&req)?;
    let classes = modswap_codegen::classify(&pair)?;
    let plan = plan::plan(&pair, &classes)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| modswap_codegen::default_output(&pair));
    let w = write_handler(&plan, &out, args.force)?;
    let mut s = String::new();
    let state = if w.unchanged { "up to date" } else { "written" };
    writeln!(
        s,
        "{}: {state}; {} TODO(s) open, {} decided",
        w.path.display(),
        w.open,
        w.decided
    )?;
    for t in plan.todos.iter().filter(|t| w.open_ids.contains(&t.id)) {
        writeln!(s, "  TODO {}: {}", t.id, t.message)?;
    }
    print!("{s}");
    Ok(ExitCode::SUCCESS)
}
