//! `cargo xtask`: the project's developer tasks.
//!
//! - `setup`: install the Debian packages and Rust crates the project needs.
//! - `kernel`: unpack, patch, configure and build a Linux 6.12 tree.
//! - `test`: everything `setup` does, then every test (the README's test command).
//! - `loader-test`: the loader's QEMU tests only.
//! - `bench loader`: the loader benchmark (stock vs hotswap kernel in QEMU).
//! - `bench kbuild`: the Kbuild fragment on fs/fat (full and incremental checks).
//! - `bench annotate`: speed and memory of `modswap annotate`.
//! - `quickstart`: set up, run `modswap annotate fs/fat` on the installed
//!   kernel source, build, inspect and verify the example modules
//!   (the README's main command).
//! - `demo`: the paper's experiment: fat, vfat, msdos and bfs hotswapped
//!   under a web load in QEMU, with its summary.
//! - `bench e2e`: the experiment's figures (the paper's tables 1-3 and 6).
//! - `bench coverage`: how many of Debian's modules the loader would refuse.

mod bench;
mod distro;
mod e2e;
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
        /// hotswap (the test kernel), stock (the same, unpatched) or distro
        /// (Debian's own configuration with the series, reduced in what it
        /// builds).
        #[arg(long, visible_alias = "profile", value_enum, default_value = "hotswap")]
        variant: kernel::Variant,
        /// Build the hotswap tree after each patch of the loader series, and
        /// with CONFIG_MODULE_HOTSWAP off (slow; not part of `test`).
        #[arg(long)]
        check_series: bool,
    },
    /// Set up, then run every test (under 75 minutes cold on 2 cores).
    Test {
        /// Also the long run: every patch of the loader series built on
        /// its own and the series with CONFIG_MODULE_HOTSWAP off booted
        /// (`kernel --check-series`).
        #[arg(long)]
        full: bool,
    },
    /// Build the hotswap kernel (or the distro profile's) and run the
    /// loader's QEMU tests.
    LoaderTest {
        #[arg(long, visible_alias = "profile", value_enum, default_value = "hotswap")]
        variant: kernel::Variant,
    },
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(BenchTask),
    /// Set up, run `modswap annotate fs/fat` on the installed kernel
    /// source, build, inspect and verify the example modules.
    Quickstart,
    /// Run the paper's experiment (fat, vfat, msdos, bfs hotswapped under a
    /// web load in QEMU) and print its summary.
    Demo {
        /// v1 -> v2 -> v1 round trips of each module.
        #[arg(long, default_value_t = 20)]
        rounds: u32,
        /// Concurrent web clients.
        #[arg(long, default_value_t = 50)]
        clients: u32,
        /// The kernel: the test kernel (hotswap) or Debian's configuration
        /// (distro).
        #[arg(long, visible_alias = "profile", value_enum, default_value = "hotswap")]
        variant: kernel::Variant,
    },
}

#[derive(Subcommand)]
enum BenchTask {
    /// Module loading and hotswapping, stock vs hotswap kernel, in QEMU.
    Loader,
    /// The Kbuild fragment on fs/fat: full and incremental modswap-check.
    Kbuild,
    /// The fat/vfat experiment: load, swap, re-resolution, request rate, memory.
    E2e,
    /// `modswap annotate` on fs/fat beside Kbuild's compile time, and on
    /// every module directory under fs/.
    Annotate(bench::annotate::Args),
    /// Every module of Debian's linux-image-6.12.117+deb12-amd64: how many
    /// carry a section that the loader refuses, per refusal.
    Coverage,
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
            if variant == kernel::Variant::Distro {
                distro::check(&tree.dir)?;
            }
            println!("{}", tree.dir.display());
            Ok(())
        }
        Task::Test { full } => test(full),
        Task::LoaderTest { variant } => {
            setup::debian_packages()?;
            let tree = kernel::prepare(variant)?;
            if variant == kernel::Variant::Distro {
                distro::check(&tree.dir)?;
            }
            loadertest::test(&tree)
        }
        Task::Bench(BenchTask::Loader) => {
            setup::debian_packages()?;
            bench::loader::bench()
        }
        Task::Bench(BenchTask::Kbuild) => {
            setup::all()?;
            bench::kbuild::bench()
        }
        Task::Bench(BenchTask::E2e) => {
            setup::debian_packages()?;
            bench::e2e::bench()
        }
        Task::Quickstart => quickstart::quickstart(),
        Task::Demo {
            rounds,
            clients,
            variant,
        } => {
            setup::all()?;
            e2e::demo(rounds, clients, variant)
        }
        Task::Bench(BenchTask::Annotate(args)) => bench::annotate::run_bench(&args),
        Task::Bench(BenchTask::Coverage) => {
            setup::debian_packages()?;
            bench::coverage::bench()
        }
    }
}

fn test(full: bool) -> Result<()> {
    setup::all()?;
    let tree = kernel::prepare(kernel::Variant::Hotswap)?;
    util::run(
        util::Cmd::new(env!("CARGO"))
            .args(["test", "--workspace", "--locked"])
            .env("MODSWAP_KERNEL_TREE", &tree.dir)
            .current_dir(paths::repo_root()),
    )?;
    loadertest::test(&tree)?;
    e2e::test(&tree)?;
    // Debian's own configuration with the series: its config check and
    // the loader's QEMU tests, with the facilities it has.
    let distro = kernel::prepare(kernel::Variant::Distro)?;
    distro::check(&distro.dir)?;
    loadertest::test(&distro)?;
    if full {
        kernel::check_series()?;
    }
    Ok(())
}
