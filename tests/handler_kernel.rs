//! `modswap handler` on real kernel sources: vfat of Linux 6.12 (fs/fat of
//! the built tree), the paper's example (4.1, Figs. 5-6). Two copies of
//! fs/fat are annotated with `modswap annotate`'s rewrite; the second gets
//! new code and a new global. The vfat handler re-points vfat_fs_type's
//! name and init_fs_context (Fig. 6b), builds into vfat.ko with the
//! kernel's flags and -Werror, passes checkpatch, and `modswap verify`
//! accepts the pair.

#[path = "support/handler.rs"]
mod support;

use modswap_analyze as analyze;
use modswap_codegen::{plan, version, write_handler};
use modswap_elf::Object;
use modswap_tests::{kernel_tree, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// Copies fs/fat's sources and Makefile to `to`.
fn copy_fat(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(kernel_tree().join("fs/fat")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let keep = (name.ends_with(".c") && !name.ends_with(".mod.c"))
            || name.ends_with(".h")
            || name == "Makefile";
        if keep && p.is_file() {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// `make -C <tree> M=<dir> modules` with -Werror.
fn build(dir: &Path) {
    let out = Command::new("make")
        .arg("-C")
        .arg(kernel_tree())
        .arg(format!("M={}", dir.display()))
        .arg(format!(
            "KCFLAGS=-Werror -I{}",
            repo_root().join("loader/include").display()
        ))
        .args(["-s", "-j2", "modules"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Annotates a built module directory in place and rebuilds it.
fn annotate(dir: &Path) {
    let opts = analyze::pipeline::Options {
        kdir: Some(kernel_tree()),
        ..Default::default()
    };
    analyze::run(dir, &opts).unwrap().rewrite.apply().unwrap();
    build(dir);
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{}: no {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn vfat_of_linux_6_12() {
    let tmp = tempfile::Builder::new()
        .prefix("modswap-vfat-")
        .tempdir()
        .unwrap();
    let (v1, v2): (PathBuf, PathBuf) = (tmp.path().join("v1"), tmp.path().join("v2"));
    copy_fat(&v1);
    copy_fat(&v2);
    build(&v1);
    annotate(&v1);
    // v2: new code and a new global in vfat.
    let namei = v2.join("namei_vfat.c");
    edit(
        &namei,
        "static int vfat_revalidate_shortname(",
        "static unsigned long vfat_lookups;\n\nstatic int vfat_revalidate_shortname(",
    );
    edit(
        &namei,
        "\tmutex_lock(&MSDOS_SB(sb)->s_lock);\n\n\terr = vfat_find(dir, &dentry->d_name, &sinfo);",
        "\tmutex_lock(&MSDOS_SB(sb)->s_lock);\n\tvfat_lookups++;\n\n\terr = vfat_find(dir, &dentry->d_name, &sinfo);",
    );
    build(&v2);
    annotate(&v2);

    let mut req = request(v1.to_str().unwrap(), &v2);
    req.kdir = Some(kernel_tree());
    req.module = Some("vfat".into());
    let pair = version::load(&req).unwrap();
    let classes = modswap_codegen::classify(&pair).unwrap();
    let plan = plan::plan(&pair, &classes).unwrap();
    let handler = v2.join("vfat_modswap.c");
    let w = write_handler(&plan, &handler, false).unwrap();
    let shown = regex_free_redact(&w.text);
    insta::assert_snapshot!("vfat_modswap.c", shown);
    // Fig. 6b: the members of vfat_fs_type that point into the module.
    assert!(w.text.contains("\tvfat_fs_type.name = \"vfat\";\n"));
    assert!(w
        .text
        .contains("\tvfat_fs_type.init_fs_context = vfat_init_fs_context;\n"));
    assert!(!w.text.contains("vfat_fs_type.owner"), "THIS_MODULE stays");
    assert!(
        !w.text.contains("vfat_fs_type.kill_sb"),
        "a kernel function stays"
    );

    std::fs::write(&handler, fill(&w.text, &fills("vfat"))).unwrap();
    include_handler(&namei, "vfat_modswap.c", None);
    build(&v2);
    let (errors, report) = checkpatch(&handler);
    assert_eq!(errors, 0, "checkpatch:\n{report}");
    let problems = modswap_elf::verify::verify(
        &Object::read(&v1.join("vfat.ko")).unwrap(),
        &Object::read(&v2.join("vfat.ko")).unwrap(),
    );
    assert!(problems.is_empty(), "verify: {problems:?}");
}

/// The source digests and the checksum depend on annotate's markers in the
/// copies; the snapshot shows the handler without them.
fn regex_free_redact(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut l = l.to_string();
            for tag in ["fnv1a64:", "modswap-checksum: "] {
                if let Some(at) = l.find(tag) {
                    let start = at + tag.len();
                    let end = (start + 16).min(l.len());
                    l.replace_range(start..end, "<digest>");
                }
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}
