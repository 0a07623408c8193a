//! Create: a fresh network namespace is made if the spec asks for one, the `prestart` and
//! `createRuntime` hooks run, the urunc configuration's files are resolved beneath the rootfs,
//! the cgroup and network made, the VMM planned and its confinement prepared (while the
//! netns worker still makes the tap, once the guest's side of the network is decided), then
//! the `createContainer` hooks run; any failure undoes it all.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use runtime_core::oci::{Spec, Status};
use runtime_core::{Hypervisor, UnikernelType, UruncConfig, VmmInput, VmmPlan};

use super::network::{attach_network, log_network, make_fresh_netns, PendingNetwork};
use super::shared_rootfs;
use super::stop::undo;
use super::{lock, run_hooks, ConfinedVmm, Inner, UnikernelKind};
use crate::cgroup::Cgroup;
use crate::confine::seccomp::SeccompFilter;
use crate::confine::{self, ConfineTarget, GuestFiles, HostFiles, VmmLaunch, WaitingVmm};
use crate::container::blocking::BlockingSteps;
use crate::container::core::ContainerCore;
use crate::container::phase_timer::PhaseTimer;
use crate::container::prepared::{with_undo, Prepared};
use crate::container::{Container, ShimContext};
use crate::error::{Result, ShimError};
use crate::hooks::HookKind;
use crate::reaper::ExitRouter;
use crate::spawn::{network_path, NamespacePlan, PidNamespace};
use crate::state::ContainerKind;
use crate::{accel_probe, block_rootfs, host, node_config};

/// In the container's state directory: the VMM's own writable directory (its QMP socket, its
/// config file), owned by the VMM's user, and the empty directory its confined root is
/// mounted on (in the VMM's mount namespace only).
const VMM_DIR: &str = "vmm";
const VMM_ROOT_DIR: &str = "vmm-root";
const QMP_SOCKET: &str = "qmp.sock";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// What Create planned: the VMM invocation and what it was built from.
struct Planned {
    vmm: VmmPlan,
    /// What the VMM binary (the plan's program looked up in PATH, or `[monitors.<vmm>] path`
    /// of the node configuration) needs from the host, with `[monitors.qemu] data_path`'s
    /// folders in place of the host's qemu data.
    host_files: HostFiles,
    input: VmmInput,
    vmm_dir: PathBuf,
    cgroup: Option<Cgroup>,
    /// The guest's disk is the rootfs block device (`block_rootfs` handed it over).
    block_is_device: bool,
}

impl UnikernelKind {
    /// Builds the unikernel of `prepared`; its blocking work runs as `steps` (off the reactor).
    pub async fn create(
        context: ShimContext,
        steps: &BlockingSteps,
        prepared: Prepared,
        config: UruncConfig,
        timer: PhaseTimer,
    ) -> Result<Container> {
        let created_at = Instant::now();
        let prepared = Arc::new(Mutex::new(prepared));
        // The network's attach, from when its guest side is decided until it is made: every
        // way out of Create waits for it, so the undo finds its record.
        let mut network_in_flight: Option<PendingNetwork<'_>> = None;
        let planned = async {
            let mut timer = timer;
            make_fresh_netns(&prepared).await?;
            timer.mark("fresh_netns");
            // Before the attach: these hooks may give the namespace its eth0 (nerdctl's CNI).
            for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                run_hooks(&context, &prepared, kind, Status::Creating, None).await?;
            }
            timer.mark("runtime_hooks");
            let planned = plan(
                (&context, steps, &prepared),
                config,
                timer,
                &mut network_in_flight,
            )
            .await?;
            let shared = prepared.clone();
            let router = context.router.clone();
            let (planned, confined, mut timer) = steps
                .run("write the VMM's files and confine it", move || {
                    let (planned, mut timer) = planned;
                    let confined = confine_vmm(&shared, &router, &planned, &mut timer)?;
                    Ok((planned, confined, timer))
                })
                .await?;
            if let Some(network) = network_in_flight.take() {
                if let Err(error) = network.ready().await {
                    confined.process.abandon().await;
                    return Err(error);
                }
            }
            // The network exists: the createContainer hooks see it (urunc's TS16 is this end).
            timer.mark("network_ready");
            let hooks = run_hooks(
                &context,
                &prepared,
                HookKind::CreateContainer,
                Status::Creating,
                None,
            )
            .await;
            if let Err(error) = hooks {
                // Gone before the undo removes the cgroup it joined.
                confined.process.abandon().await;
                return Err(error);
            }
            timer.mark("hooks");
            Ok((planned, confined, timer))
        }
        .await;
        match planned {
            Ok((planned, confined, timer)) => {
                // Awaited before the hooks; gone here, as its borrow of the context must be.
                drop(network_in_flight);
                let core = ContainerCore::of_prepared(&lock(&prepared), context.exits.clone());
                let id = core.id().to_string();
                let plan = planned.vmm;
                tracing::info!(%id, program = %confined.program.display(), args = ?plan.args, "VMM planned");
                // Before phases_us: shim_bench reads the phases to the end of the line.
                let cpu = timer.cpu_spent().unwrap_or_default();
                tracing::info!(
                    %id,
                    cpu_user_us = cpu.user.as_micros() as u64,
                    cpu_sys_us = cpu.system.as_micros() as u64,
                    runq_us = cpu.run_queue.as_micros() as u64,
                    phases_us = %timer,
                    "Create phases"
                );
                if let Some(node_config) = &lock(&prepared).state.node_config {
                    crate::timestamps::record(
                        &node_config.timestamps,
                        runtime_core::TimedRequest::Create,
                        &id,
                        &timer,
                    );
                }
                let kind = UnikernelKind {
                    inner: Arc::new(Inner {
                        core: core.clone(),
                        context,
                        plan,
                        hypervisor: planned.input.config.hypervisor,
                        cgroup: planned.cgroup,
                        prepared,
                        confined: Mutex::new(Some(confined)),
                        logger: Mutex::new(None),
                        poststop_ran: AtomicBool::new(false),
                        created_at,
                    }),
                };
                Ok(Container::new(core, Box::new(kind)))
            }
            Err(error) => {
                let error = match network_in_flight.take() {
                    Some(network) => with_undo(error, network.ready().await),
                    None => error,
                };
                let undo = undo(&context, &prepared).await;
                Err(with_undo(error, undo))
            }
        }
    }
}

/// The VMM's mount namespace is the confined root the shim builds for it at Create: a spec
/// that names another one to join (`linux.namespaces[i].path` of type mount) cannot have it.
fn refuse_mount_namespace_path(namespaces: &[runtime_core::oci::Namespace]) -> Result<()> {
    let named = namespaces
        .iter()
        .enumerate()
        .find_map(|(index, namespace)| {
            let path = namespace.path.as_ref()?;
            (namespace.kind == runtime_core::oci::NamespaceType::Mount).then_some((index, path))
        });
    match named {
        Some((index, path)) => Err(ShimError::Unimplemented {
            operation: "joining a mount namespace for a unikernel",
            reason: format!(
                "linux.namespaces[{index}].path={}: the VMM runs in the confined mount \
                 namespace the shim builds for it",
                path.display()
            ),
        }),
        None => Ok(()),
    }
}

/// Writes the VMM plan's files; plans the VMM's confinement from the spec's process and the
/// files the VMM needs; refuses an impossible user or capability set before anything runs;
/// starts building the VMM's root.
fn confine_vmm(
    prepared: &Mutex<Prepared>,
    router: &ExitRouter,
    planned: &Planned,
    timer: &mut PhaseTimer,
) -> Result<ConfinedVmm> {
    let (process, new_root, linux, owner) = {
        let p = lock(prepared);
        (
            p.spec.process.clone(),
            p.store.dir().join(VMM_ROOT_DIR),
            p.spec.linux.clone(),
            vmm_owner(&p.spec),
        )
    };
    for file in &planned.vmm.files {
        write_private(&file.path, &file.contents, owner)?;
    }
    timer.mark("plan_files");
    // Refused here rather than at Start: what the VMM cannot be given (a user namespace, a
    // pid namespace path that does not open) fails Create and leaves nothing.
    let namespaces = NamespacePlan::from_spec(&linux.namespaces)?.without_mount();
    refuse_mount_namespace_path(&linux.namespaces)?;
    let pid_namespace = PidNamespace::from_spec(&linux.namespaces)?;
    timer.mark("confinement");
    let seccomp = linux
        .seccomp
        .as_ref()
        .map(SeccompFilter::compile)
        .transpose()?;
    timer.mark("seccomp_compile");
    if let Some(filter) = &seccomp {
        // Names this libseccomp does not know are left out, as runc does: say which.
        tracing::info!(
            instructions = filter.instructions(),
            skipped = ?filter.skipped(),
            "the spec's seccomp profile is compiled for the VMM"
        );
    }
    create_dir(&new_root, 0o755, None)?;
    let input = &planned.input;
    let guest = GuestFiles {
        kernel: Some(input.kernel.clone()),
        initrd: input.initrd.clone(),
        block: input.block.clone(),
        block_is_device: planned.block_is_device,
        read_only: Vec::new(),
        writable_dirs: std::iter::once(planned.vmm_dir.clone())
            .chain(shared_rootfs::shared_dir(input.shared_rootfs.as_ref()))
            .collect(),
    };
    let (plan, confinement) = confine::prepare_for(
        &ConfineTarget {
            new_root: &new_root,
            guest: &guest,
            accel: input.accel,
            networked: input.network.is_some(),
            process: process.as_ref(),
        },
        &planned.host_files,
    )?;
    timer.mark("confinement");
    let launch = VmmLaunch {
        program: c_string("the VMM program", plan.program.as_os_str().as_bytes())?,
        argv: std::iter::once(&planned.vmm.program)
            .chain(&planned.vmm.args)
            .map(|arg| c_string("the VMM's argv", arg.as_bytes()))
            .collect::<Result<_>>()?,
        env: vec![c_string(
            "the VMM's PATH",
            format!("PATH={}", host::vmm_search_path()).as_bytes(),
        )?],
        cgroup_join: match &planned.cgroup {
            Some(cgroup) => cgroup.join_files()?,
            None => Vec::new(),
        },
        namespaces,
        pid_namespace,
        seccomp,
    };
    // Prepared while containerd answers this Create and sends Start; Start lets it exec.
    let process = WaitingVmm::fork(&confinement, &launch, router)?;
    timer.mark("vmm_fork");
    Ok(ConfinedVmm {
        program: plan.program,
        process,
    })
}

fn c_string(field: &str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| {
        ShimError::invalid(
            field,
            String::from_utf8_lossy(bytes),
            "holds a NUL byte, which no argument of exec can",
        )
    })
}

/// The spec's process user, who owns the VMM's directory, files and tap.
pub(super) fn vmm_owner(spec: &Spec) -> (u32, u32) {
    spec.process
        .as_ref()
        .map_or((0, 0), |p| (p.user.uid, p.user.gid))
}

fn create_dir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| ShimError::io(format!("create {}", path.display()), e))?;
    // The mode is set again: the umask narrowed it at creation.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ShimError::io(format!("chmod {}", path.display()), e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| ShimError::io(format!("chown {}", path.display()), e))?;
    }
    Ok(())
}

/// A Linux guest on qemu gets a QMP socket for the graceful stop: Linux can act on the ACPI
/// power button. The unikernels (unikraft, mirage, mewz) have no ACPI power-button handling,
/// so pressing it would only make every stop last the caller's whole grace period: their
/// SIGTERM ends qemu, as before. Firecracker runs with `--no-api` as under urunc; the other
/// VMMs have no such channel.
fn control_socket(config: &UruncConfig, vmm_dir: &Path) -> Option<PathBuf> {
    if config.hypervisor != Hypervisor::Qemu || config.unikernel_type != UnikernelType::Linux {
        return None;
    }
    let socket = vmm_dir.join(QMP_SOCKET);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        tracing::warn!(socket = %socket.display(), "QMP socket path too long for a Unix socket: SIGTERM will end qemu instead of powering the guest off");
        return None;
    }
    Some(socket)
}

/// Everything Create does after the rootfs is mounted, its blocking work as `steps`; returns
/// the plan with the timer, and leaves in `network_in_flight` the attach the worker is still
/// making (its guest side is in the plan). On error the caller waits for that attach, then
/// undoes it all.
async fn plan<'a>(
    (context, steps, prepared): (&'a ShimContext, &BlockingSteps, &'a Arc<Mutex<Prepared>>),
    config: UruncConfig,
    mut timer: PhaseTimer,
    network_in_flight: &mut Option<PendingNetwork<'a>>,
) -> Result<(Planned, PhaseTimer)> {
    let (id, rootfs, spec, store) = {
        let p = lock(prepared);
        (
            p.id.clone(),
            p.rootfs.clone(),
            p.spec.clone(),
            p.store.clone(),
        )
    };
    let owner = vmm_owner(&spec);
    let vmm_dir = store.dir().join(VMM_DIR);
    // The network is attached on the sandbox's worker while the cgroup is made on one blocking
    // thread and this Create's own steps (the node configuration, the VMM's host files, the
    // guest's files, the VMM's folder) run on another: they need nothing of each other, and
    // each records its change of the state under the state's one lock. All three are waited
    // for (the attach until its guest side is decided; the rest is `network_in_flight`, which
    // every way out waits for), so a failure of one leaves nothing of the others in flight
    // for the undo. The kind is set first, so whichever writes the state first tells a
    // crashed shim's `delete` that this is a unikernel (whose poststop hooks it runs).
    lock(prepared).state.kind = ContainerKind::Unikernel;
    let network_path = network_path(&spec.linux.namespaces);
    let network = async {
        match network_path {
            Some(netns_path) => attach_network(context, prepared, &spec, netns_path)
                .await
                .map(Some),
            None => {
                tracing::info!(%id, "no network namespace path: the guest runs without network");
                Ok(None)
            }
        }
    };
    let own_steps = {
        let shared = prepared.clone();
        let config = config.clone();
        let dir = vmm_dir.clone();
        steps.run(
            "load the node configuration, resolve the guest files and make the cgroup",
            move || {
                let local = local_steps(&shared, &config, (&dir, owner), &mut timer)?;
                Ok((local, timer))
            },
        )
    };
    let cgroup = {
        let shared = prepared.clone();
        let cgroups_path = spec.linux.cgroups_path.clone();
        steps.run("make the cgroup", move || {
            make_cgroup(&shared, cgroups_path.as_deref())
        })
    };
    let (network, own_steps, cgroup) = tokio::join!(network, own_steps, cgroup);
    // Kept before any `?`: whatever fails, Create waits for the attach before its undo.
    *network_in_flight = network?;
    let network = network_in_flight.as_ref().and_then(|n| n.guest.clone());
    let (local, mut timer) = own_steps?;
    let cgroup = cgroup?;
    let block_rootfs::GuestFiles {
        kernel,
        initrd,
        block,
        block_is_device,
        shared_fs,
    } = local.guest;
    // What the attach's decision (the worker's lookups) and the cgroup took beyond the steps
    // they ran alongside; the tap, its qdiscs and filters are made while Create goes on.
    timer.mark("network_attach");
    let (memory_limit_bytes, vcpus) = local.node_config.monitor(config.hypervisor).apply(
        runtime_core::memory_limit_from_spec(&spec),
        runtime_core::vcpus_from_spec(&spec)?,
    );
    let accel = accel_probe::choose(&context.router, config.hypervisor, &local.program).await?;
    timer.mark("accel_probe");
    let host_files = local.host_files?;
    tracing::info!(%id, accel = ?accel.accel, cpu_features_off = ?accel.cpu_features_off, reason = %accel.reason, "accelerator");
    let process = spec.process.clone().unwrap_or_default();
    let extra_kernel_args = match config.unikernel_type {
        UnikernelType::Linux => host::tsc_early_khz_arg().into_iter().collect(),
        _ => Vec::new(),
    };
    let shared = shared_fs.map(|kind| shared_rootfs::shared_rootfs(kind, &rootfs, &vmm_dir));
    let input = VmmInput {
        memory_limit_bytes,
        vcpus,
        guest_process: runtime_core::GuestProcess {
            uid: process.user.uid,
            gid: process.user.gid,
            cwd: process.cwd,
        },
        env: process.env,
        args: process.args,
        accel: accel.accel,
        arch: host::arch(),
        cpu_features_off: accel.cpu_features_off,
        solo5_manifest: local.solo5_manifest,
        shared_rootfs: shared.clone(),
        firmware_dir: local.data_dirs.as_ref().map(|dirs| dirs[0].clone()),
        seccomp: runtime_core::seccomp_requested(&spec),
        control_socket: control_socket(&config, &vmm_dir),
        work_dir: vmm_dir.clone(),
        extra_kernel_args,
        config,
        kernel,
        initrd,
        block,
        network: network.clone(),
    };
    // Its files are written by the step that confines the VMM (one trip to a blocking thread).
    let plan = runtime_core::plan_vmm(&input)?;
    timer.mark("plan");
    if let Some(runtime_core::SharedRootfs::Virtiofs { socket }) = &shared {
        shared_rootfs::start_virtiofsd(
            context,
            steps,
            prepared,
            &local.node_config,
            (&rootfs, socket),
            cgroup.as_ref(),
            owner,
        )
        .await?;
        timer.mark("virtiofsd");
    }
    log_network(&id, network.as_ref());
    let planned = Planned {
        vmm: plan,
        host_files,
        input,
        vmm_dir,
        cgroup,
        block_is_device,
    };
    Ok((planned, timer))
}

/// What Create's own steps beside the network attach and the cgroup give the plan.
struct LocalSteps {
    node_config: runtime_core::NodeConfig,
    guest: block_rootfs::GuestFiles,
    solo5_manifest: Option<runtime_core::Solo5Manifest>,
    /// The VMM binary: `[monitors.<vmm>] path`, or the plan's program, looked up in PATH.
    program: String,
    /// Its error is returned after the accelerator's choice, whose refusal (a VMM without
    /// KVM) names the annotation and is the better first answer.
    host_files: Result<HostFiles>,
    /// `[monitors.qemu] data_path`'s folders, mounted instead of the host's qemu data.
    data_dirs: Option<Vec<PathBuf>>,
}

/// Loads the node configuration, finds the VMM binary's host files, resolves the guest files
/// beneath the rootfs, makes the VMM's folder, reads a solo5 manifest.
fn local_steps(
    prepared: &Mutex<Prepared>,
    config: &UruncConfig,
    (vmm_dir, owner): (&Path, (u32, u32)),
    timer: &mut PhaseTimer,
) -> Result<LocalSteps> {
    let (id, source) = {
        let p = lock(prepared);
        (p.id.clone(), p.node_config.clone())
    };
    let node_config = node_config::load_source(&source)?;
    timer.mark("node_config");
    let monitor = node_config.monitor(config.hypervisor);
    let data_dirs = qemu_data_dirs(&id, config.hypervisor, &monitor)?;
    let program = monitor
        .path
        .clone()
        .unwrap_or_else(|| runtime_core::vmm_program(config.hypervisor, host::arch()).to_owned());
    let host_files = confine::host_files(&program, &host::vmm_search_path(), data_dirs.as_deref());
    timer.mark("host_files");
    let (rootfs, store, request_mounts) = {
        let mut p = lock(prepared);
        // Not written here: it creates nothing, and the next write of the state carries it.
        p.state.node_config = Some(node_config.clone());
        (p.rootfs.clone(), p.store.clone(), p.mounts.clone())
    };
    // Whether the configured virtiofsd exists is part of urunc's rootfs choice.
    let virtiofsd_found = shared_rootfs::virtiofsd_binary(&node_config).is_some();
    let guest = block_rootfs::guest_files(
        &id,
        &rootfs,
        store.dir(),
        &request_mounts,
        config,
        virtiofsd_found,
    )?;
    timer.mark("guest_files");
    create_dir(vmm_dir, 0o700, Some(owner))?;
    let solo5_manifest = solo5_manifest(&id, config, &guest.kernel)?;
    timer.mark("vmm_dir");
    Ok(LocalSteps {
        node_config,
        guest,
        solo5_manifest,
        program,
        host_files,
        data_dirs,
    })
}

fn qemu_data_dirs(
    id: &str,
    hypervisor: Hypervisor,
    monitor: &runtime_core::MonitorConfig,
) -> Result<Option<Vec<PathBuf>>> {
    let Some(dirs) = monitor.qemu_data_dirs() else {
        return Ok(None);
    };
    if hypervisor != Hypervisor::Qemu {
        tracing::info!(%id, hypervisor = hypervisor.as_str(), data_path = ?monitor.data_path, "data_path is read for qemu only: this VMM has no data files");
        return Ok(None);
    }
    if !dirs.firmware.is_dir() {
        return Err(ShimError::invalid(
            "monitors.qemu.data_path",
            monitor.data_path.clone().unwrap_or_default(),
            format!(
                "{} is not a folder (urunc reads qemu's data from <data_path>/qemu)",
                dirs.firmware.display()
            ),
        ));
    }
    let mut found = vec![dirs.firmware];
    found.extend(Some(dirs.seabios).filter(|dir| dir.is_dir()));
    Ok(Some(found))
}

/// A solo5 unikernel's device manifest, read from its binary (runtime-core parses it): the
/// tender accepts only the device names it declares.
fn solo5_manifest(
    id: &str,
    config: &UruncConfig,
    kernel: &Path,
) -> Result<Option<runtime_core::Solo5Manifest>> {
    if !matches!(config.hypervisor, Hypervisor::Hvt | Hypervisor::Spt) {
        return Ok(None);
    }
    let bytes = std::fs::read(kernel)
        .map_err(|e| ShimError::io(format!("read the unikernel {}", kernel.display()), e))?;
    let manifest = runtime_core::Solo5Manifest::from_elf(&config.binary, &bytes)?;
    match &manifest {
        Some(manifest) => {
            tracing::info!(%id, devices = ?manifest.devices, "solo5 manifest");
        }
        None => {
            tracing::info!(%id, "the unikernel has no solo5 manifest: the kind's usual device names apply");
        }
    }
    Ok(manifest)
}

/// Records the cgroup's directories in the state, then creates them.
/// Makes the spec's cgroup, recorded first. Without one, the state is written all the same:
/// that write carries the kind (see `plan`).
fn make_cgroup(prepared: &Mutex<Prepared>, cgroups_path: Option<&str>) -> Result<Option<Cgroup>> {
    let Some(path) = cgroups_path else {
        Prepared::persist_change(prepared, |_| {})?;
        return Ok(None);
    };
    let cgroup = Cgroup::from_spec_path(path)?;
    Prepared::persist_change(prepared, |state| state.cgroup_dirs = cgroup.dirs.clone())?;
    cgroup.create()?;
    Ok(Some(cgroup))
}

/// Writes a file of the VMM plan, readable by the VMM's user only.
fn write_private(path: &Path, contents: &str, (uid, gid): (u32, u32)) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ShimError::io(format!("create plan file {}", path.display()), e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| ShimError::io(format!("write plan file {}", path.display()), e))?;
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
        .map_err(|e| ShimError::io(format!("chown plan file {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hypervisor: &str) -> UruncConfig {
        config_of("linux", hypervisor)
    }

    fn config_of(kind: &str, hypervisor: &str) -> UruncConfig {
        let annotations = [
            ("com.urunc.unikernel.unikernelType", kind),
            ("com.urunc.unikernel.hypervisor", hypervisor),
            ("com.urunc.unikernel.binary", "/kernel"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        UruncConfig::resolve(&annotations, None)
            .expect("valid")
            .expect("a unikernel")
    }

    #[test]
    fn only_linux_on_qemu_gets_a_control_socket_and_only_one_that_fits_sun_path() {
        let dir = Path::new("/run/urunc-rs/k8s.io/c1/vmm");
        assert_eq!(
            control_socket(&config("qemu"), dir),
            Some(dir.join(QMP_SOCKET))
        );
        assert_eq!(control_socket(&config("firecracker"), dir), None);
        assert_eq!(control_socket(&config_of("unikraft", "qemu"), dir), None);
        let long = PathBuf::from(format!("/run/urunc-rs/{}/vmm", "n".repeat(100)));
        assert_eq!(control_socket(&config("qemu"), &long), None);
    }
}
