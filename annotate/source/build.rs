//! Computes a digest of the sources that produce the IR (this crate's, the
//! IR's, Kbuild's and the libclang wrapper's), so that saved parses ("facts", see
//! `modswap_source::saved`) written by one build are trusted only by a build of
//! the same sources.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // annotate/: the crates are its subdirectories.
    let root = root
        .parent()
        .expect("annotate/source has a parent")
        .to_path_buf();
    let dirs = ["source/src", "ir/src", "kbuild/src", "libclang/src"].map(|d| root.join(d));
    let mut files = Vec::new();
    for d in &dirs {
        println!("cargo:rerun-if-changed={}", d.display());
        collect(d, &mut files);
    }
    files.sort();
    // FNV-1a, 64 bit, over each file's path (relative) and bytes.
    let mut h = modswap_util::Fnv64::new();
    let mut feed = |bytes: &[u8]| h.write(bytes);
    for f in &files {
        feed(
            f.strip_prefix(&root)
                .unwrap_or(f)
                .to_string_lossy()
                .as_bytes(),
        );
        feed(&[0]);
        feed(&std::fs::read(f).unwrap_or_default());
        feed(&[0]);
    }
    println!("cargo:rustc-env=MODSWAP_IR_SOURCES={:016x}", h.finish());
}
