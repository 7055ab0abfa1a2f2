//! `modswap handler --old <dir|rev> --new <dir> [--kdir K] [--module M]
//! [-o FILE] [--force]`: generate the replace handler of a module from two
//! versions of its source, for review.
//!
//! Exit 0: the handler was written (or was already up to date); its TODOs
//! are listed on stdout.
//!
//! `--decide ID=CODE` (repeatable) decides TODO `ID` as a reviewer would:
//! CODE (its lines indented like the TODO) replaces the TODO in its region,
//! and is kept from then on.
//!
//! `--format json` prints what was done as data, for scripts (sorted keys):
//!
//! ```json
//! {
//!   "decided": 2,
//!   "handler": "v2/counterdev_modswap.c",
//!   "open": 0,
//!   "state": "written",
//!   "todos": [{"id": "init:counterdev_state.last", "message": "initial value for counterdev_state.last", "open": false}],
//!   "units": [{"append": "\n#include \"counterdev_modswap.c\"\n", "define": null, "include": "counterdev_modswap.c", "unit": "counterdev_main.c"}]
//! }
//! ```
//!
//! `state` is `written` or `up to date`; `todos` lists every TODO of the
//! handler in the file's order; `units` lists the units the handler is
//! compiled inside, in the module's order: each ends with `#define
//! <define>` (when not null) and `#include "<include>"`, the lines
//! `append` holds. Exit 2: bad input (a version that does not parse,
//! two unrelated modules, a missing old version, a pair that cannot be
//! swapped, a reviewed handler that regenerating would damage); nothing is
//! written.

use super::{emit, Format};
use anyhow::{bail, Result};
use modswap_codegen::{plan, version, write_handler_with, WriteOptions, Written};
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
    /// Decide TODO ID with CODE, as a reviewer would (repeatable).
    #[arg(long, value_name = "ID=CODE")]
    pub decide: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
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
    let mut opts = WriteOptions {
        force: args.force,
        ..WriteOptions::default()
    };
    for d in &args.decide {
        let Some((id, code)) = d.split_once('=') else {
            bail!("--decide {d}: expected ID=CODE");
        };
        opts.decide.insert(id.to_string(), code.to_string());
    }
    let w = write_handler_with(&plan, &out, &opts)?;
    match args.format {
        Format::Text => emit(&text(&plan, &w)?)?,
        Format::Json => emit(&json(&plan, &w))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn state(w: &Written) -> &'static str {
    if w.unchanged {
        "up to date"
    } else {
        "written"
    }
}

fn text(plan: &plan::Plan, w: &Written) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "{}: {}; {} TODO(s) open, {} decided",
        w.path.display(),
        state(w),
        w.open,
        w.decided
    )?;
    for t in plan.todos.iter().filter(|t| w.open_ids.contains(&t.id)) {
        writeln!(s, "  TODO {}: {}", t.id, t.message)?;
    }
    Ok(s)
}

fn json(plan: &plan::Plan, w: &Written) -> String {
    let todos: Vec<_> = plan
        .todos
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "message": t.message,
                "open": w.open_ids.contains(&t.id),
            })
        })
        .collect();
    let v = serde_json::json!({
        "handler": w.path.display().to_string(),
        "state": state(w),
        "open": w.open,
        "decided": w.decided,
        "todos": todos,
        "units": w.includes,
    });
    serde_json::to_string_pretty(&v).expect("the summary serializes") + "\n"
}
