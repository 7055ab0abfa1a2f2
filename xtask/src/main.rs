//! `cargo xtask`: the project's developer tasks.
//!
//! - `setup`: install the Debian packages and Rust crates the project needs.
//! - `kernel`: unpack, patch, configure and build a Linux 6.12 tree.
//! - `test`: everything `setup` does, then every test (the README's test command).
//! - `loader-test`: the loader's QEMU tests only.
//! - `bench loader`: the loader benchmark (stock vs hotswap kernel in QEMU).
//! - `bench annotate`: speed and memory of `modswap annotate`.
//! - `quickstart`: set up, build the example modules, inspect and verify them
//!   (the README's main command).

mod bench;
mod kernel;
mod loadertest;
#[cfg(test)]
mod patches;
mod paths;
mod qemu;
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
        /// Build the hotswap tree after each patch of the loader series, and
        /// with CONFIG_MODULE_HOTSWAP off (slow; not part of `test`).
        #[arg(long)]
        check_series: bool,
    },
    /// Set up, then run every test.
    Test,
    /// Build the hotswap kernel and run the loader's QEMU tests.
    LoaderTest,
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(BenchTask),
    /// Set up, build the example modules, inspect and verify them.
    Quickstart,
}

#[derive(Subcommand)]
enum BenchTask {
    /// Module loading and hotswapping, stock vs hotswap kernel, in QEMU.
    Loader,
    /// `modswap annotate` on fs/fat beside Kbuild's compile time, and on
    /// every module directory under fs/.
    Annotate(bench::annotate::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::all(),
        Task::Kernel {
            variant,
            check_series,
        } => {
            setup::debian_packages()?;
            let tree = if check_series {
                kernel::check_series()?
            } else {
                kernel::prepare(variant)?
            };
            println!("{}", tree.dir.display());
            Ok(())
        }
        Task::Test => test(),
        Task::LoaderTest => {
            setup::debian_packages()?;
            loadertest::test(&kernel::prepare(kernel::Variant::Hotswap)?)
        }
        Task::Bench(BenchTask::Loader) => {
            setup::debian_packages()?;
            loadertest::bench()
        }
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
    )?;
    loadertest::test(&tree)
}
