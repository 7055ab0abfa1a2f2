//! `modswap`: a thin command line over the modswap libraries.
//!
//! Exit codes (documented in the README):
//! - 0: success; for `verify`, the pair is swap-compatible.
//! - 1: the answer is "no": `verify` found the pair incompatible, `annotate
//!   --check` found stale markers, `swap` did not swap.
//! - 2: bad input or an error (unreadable file, not an x86_64 ELF, ...).

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "modswap",
    version,
    about = "Make Linux kernel modules hotswappable"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the section names and markers shared with the loader.
    Sections {
        /// Instead, check that FILE is the <linux/modswap.h> this modswap
        /// was built with (exit 0 identical, 1 different).
        #[arg(long, value_name = "FILE")]
        check: Option<std::path::PathBuf>,
    },
    /// Show what a module (.ko) or object (.o) holds: sections, symbols,
    /// relocations, imports, exports, and who points at each global.
    Inspect(cmd::inspect::Args),
    /// Check that NEW can replace OLD in place (exit 0 yes, 1 no, 2 bad input).
    Verify(cmd::verify::Args),
    /// Classify every global of a module directory (static_old, static_new,
    /// transfer, none) and mark the declarations that need a static address
    /// section (exit 1 with --check when the markers are stale).
    Annotate(cmd::annotate::Args),
    /// Print the lines that hook modswap into a module's Kbuild file
    /// (`modswap kbuild DIR >> DIR/Kbuild`): the modswap-* make targets,
    /// <linux/modswap.h>, the replace handler.
    Kbuild(cmd::kbuild::Args),
    /// Generate the replace handler of a module from two versions of it.
    Handler(cmd::handler::Args),
    /// Replace the loaded version of a module by NEW.ko, on the running
    /// hotswap kernel (exit 0 swapped, 1 not swapped, 2 bad input).
    Swap(cmd::swap::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sections { check: Some(file) } => cmd::kbuild::check_header(&file),
        Command::Sections { check: None } => {
            let n = modswap_ir::sections::names();
            println!("static_old\t{}", n.static_old);
            println!("static_new\t{}", n.static_new);
            println!("info\t{}", n.info);
            println!("old_prefix\t{}", n.old_prefix);
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Verify(args) => cmd::verify::run(&args),
        Command::Annotate(args) => cmd::annotate::run(&args),
        Command::Kbuild(args) => cmd::kbuild::run(&args),
        Command::Handler(args) => cmd::handler::run(&args),
        Command::Swap(args) => cmd::swap::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("modswap: error: {e:#}");
            cmd::exit_error()
        }
    }
}
