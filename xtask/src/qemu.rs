//! Booting a built kernel under QEMU (TCG) with a busybox initramfs.
//!
//! - [`Initramfs`] lists the files of an initramfs and packs them with the
//!   kernel tree's own `usr/gen_init_cpio` (which can create `/dev/console`
//!   without root).
//! - [`Boot`] runs `qemu-system-x86_64 -accel tcg -smp 2` on it with the
//!   serial console captured, a timeout, and `-no-reboot` with `panic=-1` so
//!   that a panic ends QEMU. The guest ends the run with `poweroff -f`.
//! - [`kernel_problems`] finds Oopses, BUGs, WARNINGs and lockdep reports in
//!   the captured log.

use crate::util::Cmd;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The files of an initramfs, as `gen_init_cpio` list lines.
#[derive(Default)]
pub struct Initramfs {
    lines: Vec<String>,
}

impl Initramfs {
    /// `/dev/console` (the kernel opens it for init) and the usual mount
    /// points.
    pub fn new() -> Initramfs {
        let mut i = Initramfs::default();
        for d in ["/dev", "/proc", "/sys", "/tmp", "/bin", "/sbin", "/root"] {
            i.dir(d);
        }
        i.lines.push("nod /dev/console 0600 0 0 c 5 1".into());
        i
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.lines.push(format!("dir {path} 0755 0 0"));
        self
    }

    pub fn file(&mut self, path: &str, host: &Path, mode: u32) -> &mut Self {
        self.lines
            .push(format!("file {path} {} {mode:o} 0 0", host.display()));
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.lines.push(format!("slink {path} {target} 0777 0 0"));
        self
    }

    /// Static busybox as /bin/busybox with a link for each of its applets.
    pub fn busybox(&mut self) -> Result<&mut Self> {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            bail!("/bin/busybox is missing: install busybox-static (cargo xtask setup)");
        }
        let out = crate::util::output(Cmd::new(busybox).arg("--list"))?;
        self.file("/bin/busybox", busybox, 0o755);
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        for applet in list.lines().map(str::trim).filter(|a| !a.is_empty()) {
            if applet != "busybox" {
                self.symlink(&format!("/bin/{applet}"), "busybox");
            }
        }
        Ok(self)
    }

    /// A dynamically linked program of the host at `path`, with the shared
    /// libraries that `ldd` lists for it (at their host paths).
    pub fn dynamic(&mut self, path: &str, host: &Path) -> Result<&mut Self> {
        let out = crate::util::output(Cmd::new("ldd").arg(host))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut dirs = std::collections::BTreeSet::new();
        let mut libs = Vec::new();
        for line in text.lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"; not "linux-vdso.so.1".
            let lib = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            let Some(lib) = lib.filter(|l| l.starts_with('/')) else {
                continue;
            };
            let mut dir = Path::new(lib).parent();
            while let Some(d) = dir.filter(|d| *d != Path::new("/")) {
                dirs.insert(d.to_path_buf());
                dir = d.parent();
            }
            libs.push(lib.to_string());
        }
        for d in &dirs {
            self.dir(&d.display().to_string());
        }
        for lib in &libs {
            // Follow the host's symlink: the guest gets the file itself.
            let real = std::fs::canonicalize(lib)?;
            self.file(lib, &real, 0o755);
        }
        self.file(path, host, 0o755);
        Ok(self)
    }

    /// The `gen_init_cpio` list.
    pub fn list(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }

    /// Packs the initramfs (uncompressed cpio) into `out` with the
    /// `gen_init_cpio` of the kernel tree `tree`.
    pub fn build(&self, tree: &Path, out: &Path) -> Result<()> {
        let tool = tree.join("usr/gen_init_cpio");
        if !tool.exists() {
            bail!("{} is missing: build the kernel tree first", tool.display());
        }
        let list = out.with_extension("list");
        std::fs::write(&list, self.list())?;
        let cpio = crate::util::output(Cmd::new(&tool).arg(&list))
            .with_context(|| format!("packing {}", out.display()))?;
        std::fs::write(out, cpio.stdout)?;
        Ok(())
    }
}

/// One QEMU run.
pub struct Boot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Kernel command line after `console=ttyS0 panic=-1`.
    pub append: String,
    pub timeout: Duration,
    pub smp: u32,
    pub mem_mb: u32,
    /// Where the serial log is written as it comes (for a human to watch).
    pub log: PathBuf,
    /// Raw disk images, attached as virtio-blk disks (/dev/vda, vdb, ...).
    pub drives: Vec<PathBuf>,
}

/// What a run left behind.
pub struct BootLog {
    /// The serial console output with `\r` removed.
    pub text: String,
    pub timed_out: bool,
    /// The guest powered off (rather than panicking or hanging).
    pub powered_off: bool,
    pub elapsed: Duration,
}

impl Boot {
    pub fn new(kernel: PathBuf, initrd: PathBuf, log: PathBuf) -> Boot {
        Boot {
            kernel,
            initrd,
            append: String::new(),
            timeout: Duration::from_secs(600),
            smp: 2,
            mem_mb: 512,
            log,
            drives: Vec::new(),
        }
    }

    fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("qemu-system-x86_64");
        for d in &self.drives {
            cmd = cmd
                .arg("-drive")
                .arg(format!("file={},format=raw,if=virtio", d.display()));
        }
        cmd.args(["-accel", "tcg", "-nographic", "-no-reboot"])
            .arg("-smp")
            .arg(self.smp.to_string())
            .arg("-m")
            .arg(self.mem_mb.to_string())
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .arg("-append")
            .arg(format!("console=ttyS0 panic=-1 {}", self.append))
    }

    pub fn run(&self) -> Result<BootLog> {
        let cmd = self.command();
        eprintln!("+ {}", cmd.shown());
        let started = Instant::now();
        let mut child = cmd
            .into_inner()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start qemu-system-x86_64 (cargo xtask setup installs it)")?;
        let (raw, timed_out) = collect(&mut child, self.timeout, &self.log)?;
        let text = String::from_utf8_lossy(&raw).replace('\r', "");
        let powered_off = text.contains("reboot: Power down");
        Ok(BootLog {
            text,
            timed_out,
            powered_off,
            elapsed: started.elapsed(),
        })
    }
}

/// Reads the child's stdout into memory and into `log` until it exits or
/// `timeout` passes (then it is killed). Returns the output and whether the
/// timeout hit.
fn collect(child: &mut Child, timeout: Duration, log: &Path) -> Result<(Vec<u8>, bool)> {
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let mut stderr = child.stderr.take().context("qemu stderr")?;
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !err.is_empty() {
        out.extend_from_slice(b"\n[qemu stderr] ");
        out.extend_from_slice(&err);
    }
    std::fs::write(log, &out).with_context(|| format!("writing {}", log.display()))?;
    Ok((out, timed_out))
}

/// Kernel log patterns that fail a run.
const PROBLEMS: &[&str] = &[
    "Oops",
    "BUG:",
    "WARNING:",
    "Kernel panic",
    "general protection fault",
    "Call Trace:",
    "possible circular locking dependency",
    "possible recursive locking",
    "inconsistent lock state",
    "INFO: trying to register non-static key",
    "DEBUG_LOCKS_WARN_ON",
    "suspicious RCU usage",
    "list_add corruption",
    "list_del corruption",
    "UBSAN:",
    "KASAN:",
];

/// Lines of `log` that show a kernel problem, with their line numbers.
pub fn kernel_problems(log: &str) -> Vec<String> {
    log.lines()
        .enumerate()
        .filter(|(_, l)| PROBLEMS.iter().any(|p| l.contains(p)))
        .map(|(i, l)| format!("line {}: {}", i + 1, l.trim_end()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_list_has_console_and_files() {
        let mut i = Initramfs::new();
        i.file("/init", Path::new("/tmp/init"), 0o755)
            .symlink("/bin/sh", "busybox");
        let list = i.list();
        assert!(list.contains("nod /dev/console 0600 0 0 c 5 1\n"));
        assert!(list.contains("file /init /tmp/init 755 0 0\n"));
        assert!(list.contains("slink /bin/sh busybox 0777 0 0\n"));
        assert!(list.starts_with("dir /dev 0755 0 0\n"));
    }

    #[test]
    fn problems_are_found_with_line_numbers() {
        let log = "ok\n[    1.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\nfine\n\
                   [ 2.0] BUG: kernel NULL pointer dereference\n\
                   [ 3.0] ======================================================\n\
                   [ 3.0] WARNING: possible circular locking dependency detected\n";
        let p = kernel_problems(log);
        assert_eq!(p.len(), 3);
        assert!(p[0].starts_with("line 2: "));
        assert!(p[1].contains("NULL pointer"));
        assert!(kernel_problems("MSW-TEST x PASS\nreboot: Power down\n").is_empty());
    }
}
