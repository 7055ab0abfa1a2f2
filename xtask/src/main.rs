//! `cargo xtask`: the project's developer tasks.
//!
//! - `setup`: install the Debian packages and Rust crates the project needs.
//! - `kernel`: unpack, patch, configure and build a Linux 6.12 tree.
//! - `test`: everything `setup` does, then every test (the README's test command).
//! - `bench annotate`: speed and memory of `modswap annotate`.
//! - `quickstart`: set up, build the example modules, inspect and verify them
//!   (the README's main command).

mod bench;
mod kernel;
mod paths;
mod quickstart;
mod setup;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "modswap developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install missing Debian packages and fetch Rust crates (idempotent).
    Setup,
    /// Build a Linux 6.12 tree under the cache directory and print its path.
    Kernel {
        #[arg(long, value_enum, default_value = "hotswap")]
        variant: kernel::Variant,
    },
    /// Set up, then run every test.
    Test,
    /// Set up, build the example modules, inspect and verify them.
    Quickstart,
    /// Print speed and memory figures.
    #[command(subcommand)]
    Bench(BenchTask),
}

#[derive(Subcommand)]
enum BenchTask {
    /// `modswap annotate` on fs/fat beside Kbuild's compile time, and on
    /// every module directory under fs/.
    Annotate(bench::annotate::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::all(),
        Task::Kernel { variant } => {
            setup::debian_packages()?;
            let tree = kernel::prepare(variant)?;
            println!("{}", tree.dir.display());
            Ok(())
        }
        Task::Test => test(),
        Task::Quickstart => quickstart::quickstart(),
        Task::Bench(BenchTask::Annotate(args)) => bench::annotate::run_bench(&args),
    }
}

fn test() -> Result<()> {
    setup::all()?;
    let tree = kernel::prepare(kernel::Variant::Hotswap)?;
    util::run(
        util::Cmd::new(env!("CARGO"))
            .args(["test", "--workspace", "--locked"])
            .env("MODSWAP_KERNEL_TREE", &tree.dir)
            .current_dir(paths::repo_root()),
    )
}
