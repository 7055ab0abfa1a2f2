//! `modswap`: a thin command line over the modswap libraries.
//!
//! Exit codes (documented in the README):
//! - 0: success; for `verify`, the pair is swap-compatible.
//! - 1: the answer is "no": `verify` found the pair incompatible.
//! - 2: bad input or an error (unreadable file, not an x86_64 ELF, ...).

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sections => {
            let n = modswap_annotate::sections::names();
            println!("static_old\t{}", n.static_old);
            println!("static_new\t{}", n.static_new);
            println!("info\t{}", n.info);
            println!("old_prefix\t{}", n.old_prefix);
            ExitCode::SUCCESS
        }
    }
}
