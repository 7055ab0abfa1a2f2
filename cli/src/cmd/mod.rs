//! One file per command; `main.rs` only dispatches.

pub mod annotate;
pub mod handler;
pub mod inspect;
pub mod kbuild;
pub mod swap;
mod table;
pub mod verify;

use std::io::Write;
use std::process::ExitCode;

/// Writes a command's report to stdout. A closed pipe (`modswap inspect |
/// head`) ends the output quietly instead of failing.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Exit code for "the answer is no" (`verify`: incompatible; `annotate
/// --check`: stale).
pub fn exit_no() -> ExitCode {
    ExitCode::from(1)
}

/// Exit code for bad input or any other error.
pub fn exit_error() -> ExitCode {
    ExitCode::from(2)
}

/// Output format of the commands that print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable tables.
    Text,
    /// Stable JSON (sorted keys; see the command's documentation).
    Json,
}
