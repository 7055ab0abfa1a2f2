//! `modswap kbuild <module-dir>`: prints the lines that hook modswap into a
//! module's Kbuild file (or the Makefile Kbuild reads there):
//!
//! ```make
//! MODSWAP ?= <this modswap binary>
//! include <the modswap checkout>/templates/kbuild/modswap.mk
//! ```
//!
//! so that `modswap kbuild DIR >> DIR/Kbuild` sets a module up. Prints
//! nothing when the file already includes the fragment. The fragment is
//! the one in the checkout this binary was built from; the command refuses
//! (exit 2) when that file, or the checkout's `loader/include/linux/modswap.h`,
//! is not the one compiled into the binary (a moved or changed checkout:
//! the build would use other markers than the toolkit reads).

use anyhow::{bail, Context, Result};
use modswap_kbuild::makefile::MODSWAP_FRAGMENT;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The fragment as this binary was built with it.
const FRAGMENT: &str = include_str!("../../../templates/kbuild/modswap.mk");

#[derive(clap::Args)]
pub struct Args {
    /// The module directory (holding its Kbuild file or Makefile).
    pub dir: PathBuf,
}

/// The modswap checkout this binary was built from.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the checkout")
        .to_path_buf()
}

/// The fragment's path, after checking that it, and the header next to
/// it, are what this binary was built with.
pub fn fragment() -> Result<PathBuf> {
    let root = checkout();
    let checks = [
        (
            root.join("templates/kbuild").join(MODSWAP_FRAGMENT),
            FRAGMENT,
        ),
        (
            root.join("loader/include/linux/modswap.h"),
            modswap_ir::sections::MODSWAP_H,
        ),
    ];
    for (path, built_with) in &checks {
        match std::fs::read_to_string(path) {
            Ok(text) if text == *built_with => {}
            Ok(_) => bail!(
                "{} has changed since this modswap was built: rebuild it (`cargo build` in {})",
                path.display(),
                root.display()
            ),
            Err(e) => bail!(
                "{}: {e}: this modswap was built in {}, which has moved or lost the file; \
                 build modswap in a modswap checkout and run that binary",
                path.display(),
                root.display()
            ),
        }
    }
    Ok(checks[0].0.clone())
}

/// The file of `dir` that Kbuild reads: `Kbuild`, else `Makefile`.
fn kbuild_file(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    ["Kbuild", "Makefile"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{}: neither Kbuild nor Makefile: not a kernel module directory",
                dir.display()
            )
        })
}

/// The lines for a module's Kbuild file.
pub fn lines(modswap: &Path, fragment: &Path) -> String {
    format!(
        "# modswap: <linux/modswap.h>, the replace handler, the modswap-* targets\n\
         # (keep these lines at the end of the file).\n\
         MODSWAP ?= {}\n\
         include {}\n",
        modswap.display(),
        fragment.display()
    )
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let file = kbuild_file(&args.dir)?;
    let fragment = fragment()?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("locating the running modswap binary")?;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let includes: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            let word = l.split_whitespace().next().unwrap_or("");
            matches!(word, "include" | "-include" | "sinclude") && l.ends_with(MODSWAP_FRAGMENT)
        })
        .collect();
    if let Some(line) = includes.first() {
        let path = line.split_whitespace().nth(1).unwrap_or("");
        if Path::new(path) == fragment {
            eprintln!(
                "modswap: {} already includes {}; nothing to add",
                file.display(),
                fragment.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "modswap: {} already includes a Kbuild fragment ({path}), not this modswap's; \
             replace that line with:\n{}",
            file.display(),
            lines(&exe, &fragment).trim_end()
        );
        return Ok(super::exit_no());
    }
    super::emit(&lines(&exe, &fragment))?;
    eprintln!(
        "modswap: add these lines to the end of {} (`modswap kbuild {} >> {}`), then run \
         `make -C {} -f {name} KDIR=<kernel build or headers dir> modswap-annotate`",
        file.display(),
        args.dir.display(),
        file.display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `modswap sections --check FILE`: is FILE the header this binary speaks?
pub fn check_header(file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if text == modswap_ir::sections::MODSWAP_H {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "modswap: {} is not the <linux/modswap.h> this modswap was built with ({}): \
         rebuild modswap from the checkout that holds it, or use the modswap built from it",
        file.display(),
        checkout().join("loader/include/linux/modswap.h").display()
    );
    Ok(super::exit_no())
}
