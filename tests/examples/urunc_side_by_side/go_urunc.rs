//! Go urunc, registered in the private containerd as `io.containerd.gourunc.v2`, from a folder
//! the user built it into (`URUNC_BENCH_GO_URUNC_DIR`, holding `containerd-shim-urunc-v2` and
//! `urunc`). Nothing of it is installed: the bench writes three small wrappers and removes them.
//!
//! - `containerd-shim-gourunc-v2` (on containerd's PATH): runs Go urunc's shim with the folder
//!   of the next wrapper first on its PATH. That shim is containerd's runc shim under another
//!   name: it runs `runc` from PATH unless its runtime options name a binary (`ctr run` passes
//!   none to a runtime other than runc's), and urunc's Makefile patches go-runc's default to
//!   `urunc` in a vendored copy; a plain `go build` does not.
//! - `runc`: Go urunc itself, with the VMM folder first on its PATH (urunc finds
//!   `qemu-system-x86_64` there) and the real runc after it (urunc hands non-unikernel
//!   containers to `runc` from PATH).
//! - `qemu-system-x86_64` in the VMM folder: Go urunc always passes `-enable-kvm -cpu host`,
//!   which aborts at once on this machine's nested KVM ("failed to set MSR 0x10a"); the wrapper
//!   rewrites `-cpu host` to `-cpu host,-arch-capabilities`, what urunc-rs's probe picks here.
//!   urunc execs its VMM after changing root to the container's rootfs, into which it binds
//!   only the VMM file, `/lib`, `/lib64`, `/usr/lib` and qemu's data folders: so the VMM folder
//!   sits under `/usr/lib` (the only host tree the VMM still sees) and holds what the wrapper
//!   runs, a static busybox as its shell and a hard link to the real qemu (in `bin/`, next to
//!   a `share/` for its firmware).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The variable naming the folder Go urunc was built into.
pub const GO_URUNC_DIR_ENV: &str = "URUNC_BENCH_GO_URUNC_DIR";
/// The runtime name Go urunc's shim is registered under (`io.containerd.urunc.v2` is ours).
pub const GO_RUNTIME: &str = "io.containerd.gourunc.v2";
/// Go urunc's shim, in the built folder.
pub const GO_SHIM_NAME: &str = "containerd-shim-urunc-v2";
/// The name containerd looks up on PATH for [`GO_RUNTIME`].
pub const GO_SHIM_ALIAS: &str = "containerd-shim-gourunc-v2";
/// The VMM Go urunc looks up on PATH for the `qemu` hypervisor on x86-64.
const QEMU: &str = "qemu-system-x86_64";
/// qemu's stderr, in the VMM folder.
const QEMU_STDERR: &str = "qemu-stderr.log";
/// Where the VMM folder goes: a host tree Go urunc binds into the VMM's root.
const VMM_PARENT: &str = "/usr/lib";

/// The wrappers around one Go urunc build; [`GoUrunc::remove`] (or drop) deletes them.
pub struct GoUrunc {
    /// The built folder.
    built: PathBuf,
    /// Temporary folder with the shim alias and the `runc` wrapper (each in its own folder).
    wrappers: Option<tempfile::TempDir>,
    /// The VMM folder under [`VMM_PARENT`].
    vmm_dir: Option<PathBuf>,
}

impl GoUrunc {
    /// The folder from [`GO_URUNC_DIR_ENV`], or `None` when it is unset.
    pub fn built_dir() -> Result<Option<PathBuf>> {
        let Some(dir) = std::env::var_os(GO_URUNC_DIR_ENV).map(PathBuf::from) else {
            return Ok(None);
        };
        for program in [GO_SHIM_NAME, "urunc"] {
            let path = dir.join(program);
            if !path.is_file() {
                bail!(
                    "{GO_URUNC_DIR_ENV}={}: no {program} there ({} is not a file)",
                    dir.display(),
                    path.display()
                );
            }
        }
        Ok(Some(dir))
    }

    /// Writes the wrappers for the build in `built`, the real qemu and runc found on `path`.
    pub fn install(built: &Path, path: &str) -> Result<Self> {
        let mut go = GoUrunc {
            built: built.canonicalize()?,
            wrappers: None,
            vmm_dir: None,
        };
        let qemu = find_on(path, QEMU)?;
        let busybox = urunc_tests::host_tools::static_busybox()?;

        let vmm_dir = PathBuf::from(VMM_PARENT).join(format!(
            "urunc-bench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos()
        ));
        std::fs::create_dir(&vmm_dir).with_context(|| format!("create {}", vmm_dir.display()))?;
        go.vmm_dir = Some(vmm_dir.clone());
        // qemu looks for its firmware relative to its program (`<program's folder>/../share/
        // seabios`, `../lib/ipxe/qemu`): the real qemu sits in `bin/`, beside a `share/` and a
        // `lib` pointing at the folders Go urunc binds into the VMM's root.
        for folder in ["bin", "share"] {
            std::fs::create_dir(vmm_dir.join(folder))?;
        }
        for data in ["qemu", "seabios"] {
            std::os::unix::fs::symlink(
                Path::new("/usr/share").join(data),
                vmm_dir.join("share").join(data),
            )?;
        }
        std::os::unix::fs::symlink("/usr/lib", vmm_dir.join("lib"))?;
        let real_qemu = vmm_dir.join("bin").join(QEMU);
        link_or_copy(&qemu, &real_qemu)?;
        let shell = vmm_dir.join("busybox");
        link_or_copy(&busybox, &shell)?;
        write_script(
            &vmm_dir.join(QEMU),
            &format!("{} sh", shell.display()),
            &qemu_wrapper(&real_qemu, &vmm_dir.join(QEMU_STDERR)),
        )?;

        let wrappers = tempfile::Builder::new()
            .prefix("urunc-bench-go-")
            .tempdir()?;
        let runtime_dir = wrappers.path().join("runtime");
        let shim_dir = wrappers.path().join("shim");
        std::fs::create_dir(&runtime_dir)?;
        std::fs::create_dir(&shim_dir)?;
        write_script(
            &runtime_dir.join("runc"),
            "/bin/sh",
            &format!(
                "# Go urunc's shim runs `runc`: that is Go urunc here.\n\
                 PATH={}:{path}\nexport PATH\nexec {} \"$@\"\n",
                vmm_dir.display(),
                go.built.join("urunc").display()
            ),
        )?;
        write_script(
            &shim_dir.join(GO_SHIM_ALIAS),
            "/bin/sh",
            &format!(
                "# {GO_RUNTIME}: Go urunc's shim, with Go urunc as its `runc`.\n\
                 PATH={}:$PATH\nexport PATH\nexec {} \"$@\"\n",
                runtime_dir.display(),
                go.built.join(GO_SHIM_NAME).display()
            ),
        )?;
        go.wrappers = Some(wrappers);
        Ok(go)
    }

    /// The folder to put on containerd's PATH.
    pub fn shim_dir(&self) -> PathBuf {
        self.wrappers
            .as_ref()
            .map(|dir| dir.path().join("shim"))
            .unwrap_or_default()
    }

    /// What Go urunc's VMMs wrote on stderr, all rounds together.
    pub fn vmm_stderr(&self) -> Option<PathBuf> {
        self.vmm_dir.as_ref().map(|dir| dir.join(QEMU_STDERR))
    }

    /// Go urunc's shim binary (what its daemon's `/proc/<pid>/exe` points at).
    pub fn shim_binary(&self) -> PathBuf {
        self.built.join(GO_SHIM_NAME)
    }

    /// Deletes the wrappers and the VMM folder; every failure is returned.
    pub fn remove(mut self) -> Result<()> {
        self.remove_files()
    }

    fn remove_files(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        if let Some(dir) = self.vmm_dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                failures.push(format!("remove {}: {e}", dir.display()));
            }
        }
        if let Some(dir) = self.wrappers.take() {
            let path = dir.path().display().to_string();
            if let Err(e) = dir.close() {
                failures.push(format!("remove {path}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("removing Go urunc's wrappers: {}", failures.join("; "))
        }
    }
}

impl Drop for GoUrunc {
    fn drop(&mut self) {
        if let Err(e) = self.remove_files() {
            eprintln!("{e:#}");
        }
    }
}

/// The qemu wrapper's body: `-cpu host` becomes `-cpu host,-arch-capabilities`, the rest is
/// passed on unchanged; qemu's stderr goes to `stderr_log` as well as to the container's
/// (`ctr run -d` keeps none), for the bench's report of a VMM that did not stay up.
fn qemu_wrapper(real_qemu: &Path, stderr_log: &Path) -> String {
    format!(
        "# Written by urunc_side_by_side for Go urunc: its `-enable-kvm -cpu host` aborts on\n\
         # this nested KVM (\"failed to set MSR 0x10a\").\n\
         count=$#\nprevious=\n\
         for arg in \"$@\"; do\n\
         \x20 if [ \"$previous\" = -cpu ] && [ \"$arg\" = host ]; then arg=host,-arch-capabilities; fi\n\
         \x20 set -- \"$@\" \"$arg\"\n\
         \x20 previous=$arg\n\
         done\n\
         shift \"$count\"\n\
         exec {} \"$@\" 2>>{}\n",
        real_qemu.display(),
        stderr_log.display()
    )
}

fn write_script(path: &Path, interpreter: &str, body: &str) -> Result<()> {
    std::fs::write(path, format!("#!{interpreter}\n{body}"))
        .with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

/// A hard link (same file system: no copy of qemu's 18 MB), else a copy.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copy {} to {}", from.display(), to.display()))
}

/// `program` in the first folder of `path` that has it.
fn find_on(path: &str, program: &str) -> Result<PathBuf> {
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program} is not on PATH ({path})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper run by `sh` with `printf` standing in for qemu: only `-cpu host` changes,
    /// every other word (one with spaces too) is passed on whole.
    #[test]
    fn the_qemu_wrapper_hides_arch_capabilities_and_keeps_every_other_argument() {
        let dir = tempfile::tempdir().unwrap();
        let printf = dir.path().join("printf-args");
        write_script(&printf, "/bin/sh", "printf '[%s]' \"$@\"\n").unwrap();
        let wrapper = dir.path().join(QEMU);
        let stderr_log = dir.path().join(QEMU_STDERR);
        write_script(&wrapper, "/bin/sh", &qemu_wrapper(&printf, &stderr_log)).unwrap();
        let out = std::process::Command::new(&wrapper)
            .args([
                "-m",
                "256M",
                "-cpu",
                "host",
                "-enable-kvm",
                "-append",
                "a b host",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[-m][256M][-cpu][host,-arch-capabilities][-enable-kvm][-append][a b host]"
        );
    }
}
