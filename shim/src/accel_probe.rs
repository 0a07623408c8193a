//! The KVM probe: what the VMM will meet when it uses KVM on this host.
//!
//! `/dev/kvm` creating a VM is not enough: on a nested, paravirtual KVM qemu's `-cpu host`
//! aborts at its first vCPU reset. For qemu the probe therefore starts qemu as the guest will
//! (`-accel kvm -cpu host`, stopped with `-S`, no devices), asks it to quit over QMP on its
//! stdin, and reads its stderr when it dies instead: a refused MSR names the CPU feature to
//! turn off (runtime-core's table), and the probe tries again without it. The outcome is
//! computed once per boot and qemu binary and recorded under the state root for the node's
//! other shims. The decision from the probe is runtime-core's.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use runtime_core::{Accel, AccelChoice, Hypervisor, KvmProbe, ProbeKey};
use tokio::sync::OnceCell;

use crate::captured;
use crate::error::{Result, ShimError};
use crate::reaper::ExitRouter;

/// Forces the accelerator: `kvm` or `tcg`; unset, empty or `auto`: the probe decides.
pub const ACCEL_ENV: &str = "URUNC_RS_ACCEL";
/// Under the state root: the qemu probe of this boot, shared by every shim of the node.
const PROBE_RECORD: &str = "kvm-probe.json";
/// A qemu that neither quits nor dies by then is killed and counted as not starting.
const QEMU_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// QMP needs its capabilities negotiated before it takes a command.
const QMP_QUIT: &[u8] = b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";

/// One probe per shim process: a node has one qemu (the first container's binary decides).
static QEMU_PROBE: OnceCell<KvmProbe> = OnceCell::const_new();

/// The accelerator for `hypervisor`: `URUNC_RS_ACCEL` when set, else what the probe predicts.
/// Refuses a VMM without TCG when KVM is not usable, naming the VMM and the reason. `program`
/// is the VMM binary the container will run (the probe runs the same qemu).
pub async fn choose(
    router: &ExitRouter,
    hypervisor: Hypervisor,
    program: &str,
) -> Result<AccelChoice> {
    let probe = match forced()? {
        Some(accel) => KvmProbe::Forced(accel),
        None => match kvm_device() {
            Err(why) => KvmProbe::Unusable(why),
            Ok(()) if hypervisor == Hypervisor::Qemu => QEMU_PROBE
                .get_or_init(|| probe_qemu_once_per_boot(router, program))
                .await
                .clone(),
            Ok(()) => KvmProbe::Usable {
                hidden: Vec::new(),
                qemu_error: None,
            },
        },
    };
    Ok(runtime_core::choose_accel(hypervisor, &probe)?)
}

/// `URUNC_RS_ACCEL`, refused by name when it is not `kvm`, `tcg`, `auto` or empty.
pub fn forced() -> Result<Option<Accel>> {
    match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") => Ok(Some(Accel::Kvm)),
        Ok("tcg") => Ok(Some(Accel::Tcg)),
        Ok("auto" | "") | Err(_) => Ok(None),
        Ok(other) => Err(ShimError::invalid(
            ACCEL_ENV,
            other,
            "expected kvm, tcg or auto",
        )),
    }
}

/// `/dev/kvm` opens read-write and creates a VM; the error says which step failed.
pub fn kvm_device() -> std::result::Result<(), String> {
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    let kvm = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("open /dev/kvm: {e}"))?;
    // SAFETY: KVM_CREATE_VM takes an integer machine type and returns a new fd or -1.
    let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return Err(format!(
            "KVM_CREATE_VM on /dev/kvm: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `vm` is the fd the ioctl just returned, owned by nobody else.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(vm) });
    Ok(())
}

/// The probe of this boot and this qemu binary, from the node-wide record when one exists;
/// otherwise probed and recorded. A record that cannot be read or written costs one probe,
/// never a wrong answer: the key covers everything the outcome depends on.
async fn probe_qemu_once_per_boot(router: &ExitRouter, program: &str) -> KvmProbe {
    let key = match probe_key(program) {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(%program, %error, "the KVM probe cannot be recorded: probing for this shim only");
            return probe_qemu(router, program).await;
        }
    };
    let record = Path::new(crate::state::STATE_ROOT).join(PROBE_RECORD);
    if let Some(probe) = std::fs::read(&record)
        .ok()
        .and_then(|bytes| runtime_core::recorded_probe(&bytes, &key))
    {
        tracing::debug!(record = %record.display(), "KVM probe reused from this boot's record");
        return probe;
    }
    let probe = probe_qemu(router, program).await;
    if let Err(error) = write_record(&record, &runtime_core::record_probe(&key, &probe)) {
        tracing::warn!(record = %record.display(), %error, "could not record the KVM probe: the next shim probes again");
    }
    probe
}

fn probe_key(program: &str) -> std::io::Result<ProbeKey> {
    let path = crate::confine::locate_program(program, &crate::host::vmm_search_path())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))?;
    let meta = std::fs::metadata(&path)?;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    Ok(ProbeKey {
        boot_id: boot_id.trim().to_owned(),
        program: path.display().to_string(),
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

/// Written whole to a temporary file and renamed: a reader sees the old record or the new.
fn write_record(record: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = record.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, record).inspect_err(|_| {
        // Best effort: the rename failure is the error reported.
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Starts qemu with KVM, `-cpu host` and the features found so far turned off, until it
/// survives or fails for a reason the feature table does not know.
pub async fn probe_qemu(router: &ExitRouter, program: &str) -> KvmProbe {
    let mut hidden: Vec<String> = Vec::new();
    loop {
        let qemu_error = run_qemu(router, program, &hidden).await.err();
        match &qemu_error {
            Some(stderr) if hidden.len() < runtime_core::MAX_HIDDEN_FEATURES => {
                if let Some(feature) = runtime_core::feature_to_hide(stderr, &hidden) {
                    tracing::info!(%program, %feature, "qemu -cpu host: this host's KVM refuses the feature's MSR; probing again without it");
                    hidden.push(feature.to_owned());
                    continue;
                }
            }
            _ => {}
        }
        return KvmProbe::Usable { hidden, qemu_error };
    }
}

/// One qemu start; `Err` holds what qemu said (or why it could not be run).
async fn run_qemu(
    router: &ExitRouter,
    program: &str,
    hidden: &[String],
) -> std::result::Result<(), String> {
    let cpu = std::iter::once("host".to_owned())
        .chain(hidden.iter().map(|f| format!("-{f}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut command = Command::new(program);
    command
        .args(["-M", machine(), "-accel", "kvm", "-cpu", &cpu, "-S"])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        // QMP on stdio: its answers go to the same capture as qemu's errors.
        .args(["-m", "16M", "-qmp", "stdio"]);
    match captured::run(router, &mut command, QMP_QUIT, QEMU_PROBE_TIMEOUT).await? {
        (0, _) => Ok(()),
        (code, output) => Err(format!("exit status {code}: {}", without_qmp(&output))),
    }
}

/// qemu's own words without the QMP JSON lines that share its output.
fn without_qmp(output: &str) -> String {
    output
        .lines()
        .filter(|l| !l.trim_start().starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The machine the probe boots: the smallest one qemu has on the host architecture.
fn machine() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "virt"
    } else {
        "microvm"
    }
}
