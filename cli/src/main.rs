//! `modswap`: a thin command line over the modswap libraries.
//!
//! Exit codes (documented in the README):
//! - 0: success; for `verify`, the pair is swap-compatible.
//! - 1: the answer is "no": `verify` found the pair incompatible.
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
    Sections,
    /// Generate the replace handler of a module from two versions of it.
    Handler(cmd::handler::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sections => {
            let n = modswap_annotate::sections::names();
            println!("static_old\t{}", n.static_old);
            println!("static_new\t{}", n.static_new);
            println!("info\t{}", n.info);
            println!("old_prefix\t{}", n.old_prefix);
            Ok(ExitCode::SUCCESS)
        }
        Command::Handler(args) => cmd::handler::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("modswap: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
