//! `modswap verify OLD NEW [--format text|json]`: can NEW replace OLD in place?
//!
//! Exit 0: compatible. Exit 1: incompatible, every problem listed. Exit 2:
//! an input could not be read or is not a relocatable x86_64 ELF (every
//! such error listed).
//!
//! JSON: `{ "schema": "modswap-verify/1", "old", "new", "compatible",
//! "problems": [{ "kind", "message", ...fields of the kind }] }`, problems in
//! a stable order (by kind, then fields).

use anyhow::{bail, Result};
use modswap_elf::verify::{verify, Problem};
use modswap_elf::Object;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Format;

pub const SCHEMA: &str = "modswap-verify/1";

#[derive(clap::Args)]
pub struct Args {
    /// The loaded version (.ko).
    pub old: PathBuf,
    /// The version that is to replace it (.ko).
    pub new: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let old = Object::read(&args.old);
    let new = Object::read(&args.new);
    let (old, new) = match (old, new) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            let errors: Vec<String> = [o.err(), n.err()]
                .into_iter()
                .flatten()
                .map(|e| e.to_string())
                .collect();
            bail!("{}", errors.join("\nmodswap: error: "));
        }
    };
    let problems = verify(&old, &new);
    let (o, n) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );
    let out = match args.format {
        Format::Json => json(&o, &n, &problems)?,
        Format::Text => text(&o, &n, &problems),
    };
    super::emit(&out)?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        super::exit_no()
    })
}

pub fn json(old: &str, new: &str, problems: &[Problem]) -> Result<String> {
    let list = problems
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("message".into(), p.to_string().into());
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>>>()?;
    let v = serde_json::json!({
        "schema": SCHEMA,
        "old": old,
        "new": new,
        "compatible": problems.is_empty(),
        "problems": list,
    });
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

pub fn text(old: &str, new: &str, problems: &[Problem]) -> String {
    let mut o = String::new();
    if problems.is_empty() {
        let _ = writeln!(o, "compatible: {new} can replace {old}");
    } else {
        let _ = writeln!(
            o,
            "incompatible: {new} cannot replace {old} ({} problem{}):",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in problems {
            let _ = writeln!(o, "  - {p}");
        }
    }
    o
}
