//! The guest: its parameters, initramfs, disk images and boot.

use super::*;

/// The experiment's parameters (kernel command line of the guest).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub mode: &'static str,
    /// v1 -> v2 -> v1 round trips of each module.
    pub rounds: u32,
    pub clients: u32,
    /// Seconds of load before and after the swaps.
    pub before: u32,
    pub after: u32,
}

impl Params {
    pub fn demo(rounds: u32, clients: u32) -> Params {
        Params {
            mode: "demo",
            rounds,
            clients,
            before: 10,
            after: 10,
        }
    }
}

pub(crate) fn webload(out: &Path) -> Result<PathBuf> {
    let bin = out.join("webload");
    run(Cmd::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(examples().join("e2e/webload.c")))?;
    Ok(bin)
}

pub(crate) const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
sh /e2e/run.sh
echo E2E-DONE
poweroff -f
"#;

pub(crate) fn initramfs(tree: &Tree, built: &Built, out: &Path, webload: &Path) -> Result<PathBuf> {
    let init = out.join("init");
    std::fs::write(&init, INIT)?;
    let mut fs = Initramfs::new();
    fs.busybox()?;
    fs.file("/init", &init, 0o755)
        .file("/bin/webload", webload, 0o755)
        .dir("/e2e")
        .file("/e2e/run.sh", &examples().join("e2e/run.sh"), 0o755)
        .dir("/mnt")
        .dir("/modules")
        .dir("/modules/nls");
    for nls in ["nls_cp437", "nls_iso8859-1"] {
        fs.file(
            &format!("/modules/nls/{nls}.ko"),
            &tree.dir.join(format!("fs/nls/{nls}.ko")),
            0o644,
        );
    }
    for v in VERSIONS {
        let mut dir_made = false;
        for ((m, ver), ko) in &built.kos {
            if ver != v {
                continue;
            }
            if !dir_made {
                fs.dir(&format!("/modules/{v}"));
                dir_made = true;
            }
            fs.file(&format!("/modules/{v}/{m}.ko"), ko, 0o644);
        }
    }
    let cpio = out.join("initramfs.cpio");
    fs.build(&tree.dir, &cpio)?;
    Ok(cpio)
}

/// Fresh disk images: FAT32 (64 MiB, vfat), FAT16 (16 MiB, msdos), BFS (64 MiB:
/// BFS gets back the blocks of a deleted file only when it is the last file
/// on the disk, so the writer's churn uses up about 2 KB per operation; an
/// 8 MiB image filled up on a quiet machine).
pub(crate) fn images(out: &Path) -> Result<Vec<PathBuf>> {
    let (vfat, msdos, bfs) = (
        out.join("vfat.img"),
        out.join("msdos.img"),
        out.join("bfs.img"),
    );
    for i in [&vfat, &msdos, &bfs] {
        if i.exists() {
            std::fs::remove_file(i)?;
        }
    }
    output(
        Cmd::new("mkfs.vfat")
            .args(["-F", "32", "-s", "1", "-n", "MODSWAP", "-C"])
            .arg(&vfat)
            .arg("65536"),
    )?;
    output(
        Cmd::new("mkfs.msdos")
            .args(["-F", "16", "-C"])
            .arg(&msdos)
            .arg("16384"),
    )?;
    std::fs::File::create(&bfs)?.set_len(64 << 20)?;
    output(Cmd::new("mkfs.bfs").arg(&bfs))?;
    Ok(vec![vfat, msdos, bfs])
}

/// Boots `tree` with the built modules and `run.sh` in mode `p.mode`.
pub(crate) fn boot(tree: &Tree, built: &Built, p: Params) -> Result<(BootLog, Vec<PathBuf>)> {
    let out = work_dir("e2e", tree.variant);
    std::fs::create_dir_all(&out)?;
    let bin = webload(&out)?;
    let cpio = initramfs(tree, built, &out, &bin)?;
    let disks = images(&out)?;
    let log = out.join(format!("serial-{}.log", p.mode));
    let mut boot = Boot::new(tree.bzimage(), cpio, log.clone());
    boot.drives = disks.clone();
    // Debian's configuration needs more memory than the test kernel's.
    if tree.variant == crate::kernel::Variant::Distro {
        boot.mem_mb = 1024;
    }
    let quiet = if p.mode.starts_with("bench") {
        " loglevel=4"
    } else {
        ""
    };
    boot.append = format!(
        "e2e.mode={} e2e.rounds={} e2e.clients={} e2e.before={} e2e.after={}{quiet}",
        p.mode, p.rounds, p.clients, p.before, p.after
    );
    boot.timeout = Duration::from_secs(u64::from(600 + 90 * p.rounds + p.before + p.after));
    let result = boot.run()?;
    eprintln!(
        "e2e: {} run on the {:?} kernel took {:.1} s (log: {})",
        p.mode,
        tree.variant,
        result.elapsed.as_secs_f64(),
        log.display()
    );
    Ok((result, disks))
}

/// `fsck.fat -n` of an image: its report, or an error when it finds problems.
pub(crate) fn fsck(image: &Path) -> Result<String> {
    let out = Cmd::new("fsck.fat")
        .arg("-n")
        .arg(image)
        .into_inner()
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run fsck.fat (dosfstools)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("fsck.fat -n {}: {}", image.display(), text.trim_end());
    }
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    Ok(text
        .lines()
        .last()
        .unwrap_or_default()
        .replace(&image.display().to_string(), &name))
}
