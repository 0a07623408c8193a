//! A unikernel container: the shim itself runs the VMM as the container's process.
//!
//! Create resolves the urunc configuration's files beneath the rootfs, records the state,
//! attaches the network through the sandbox's netns worker, builds the VMM plan, plans the
//! VMM's confinement (which refuses an impossible user or capability set) and runs the
//! `prestart`, `createRuntime` and `createContainer` hooks; any failure undoes it all. Start
//! runs the `startContainer` hooks, spawns the VMM in the container's namespaces and cgroup,
//! confined (see `confine`), then runs the `poststart` hooks. When the VMM exits, for whatever
//! reason, its network is detached (and verified clean) before TaskExit is published. Delete
//! removes everything, then runs the `poststop` hooks (see `hooks` for each hook's moment).
//!
//! Kill with SIGTERM or SIGINT asks a Linux guest on qemu to power off (QMP
//! `system_powerdown`, the ACPI power button) instead of ending qemu. A guest that ignores the
//! button (no ACPI, or nothing listening for it) keeps running: the caller's grace period ends
//! in its SIGKILL, which is delivered at once. Unikernels have no power-button handling: their
//! SIGTERM goes to qemu, which exits. When QMP cannot be reached the
//! signal goes to the VMM, which ends it. Firecracker runs with `--no-api`, as under urunc, so
//! it has no Ctrl-Alt-Del channel: its SIGTERM goes to the VMM, and the log says so. A VMM in a
//! pid namespace of its own is pid 2 under a forwarding init (`spawn::signal_init`): as pid 1,
//! firecracker and solo5-spt would never see a SIGTERM (they install no handler for it).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use containerd_shim_protos::api::{ExecProcessRequest, ProcessInfo, UpdateTaskRequest};
use netns::{AttachOutcome, AttachRequest, NetRecord, NetworkMode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtime_core::oci::{Spec, Status};
use runtime_core::{
    GracefulStop, GuestNetwork, Hypervisor, UnikernelType, UruncConfig, VmmInput, VmmPlan,
};
use tokio::sync::oneshot;

use super::prepared::{with_undo, Prepared};
use super::process::{Phase, Process};
use super::teardown;
use super::{Container, ShimContext};
use crate::cgroup::Cgroup;
use crate::confine::seccomp::SeccompFilter;
use crate::confine::{self, ConfineRequest, Confinement, GuestFiles};
use crate::console::Console;
use crate::error::{Result, ShimError};
use crate::events::ExitReport;
use crate::hooks::{self, HookKind};
use crate::reaper::ExitCode;
use crate::runc::Runc;
use crate::spawn::{
    container_command, network_path, signal_init, ChildSetup, NamespacePlan, PidNamespace,
};
use crate::state::{ContainerKind, ProcessIdentity};
use crate::stderr_tee::{self, StderrTee};
use crate::stdio::ProcessStdio;
use crate::{accel_probe, block_rootfs, host, node_config};

/// In the container's state directory: the VMM's own writable directory (its QMP socket, its
/// config file), owned by the VMM's user, and the empty directory its confined root is
/// mounted on (in the VMM's mount namespace only).
const VMM_DIR: &str = "vmm";
const VMM_ROOT_DIR: &str = "vmm-root";
const QMP_SOCKET: &str = "qmp.sock";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Bounds each QMP step of a Kill: a wedged qemu must not hold the Kill request.
const QMP_TIMEOUT: Duration = Duration::from_secs(2);

pub struct UnikernelContainer {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    bundle_text: String,
    context: ShimContext,
    plan: VmmPlan,
    hypervisor: Hypervisor,
    cgroup: Option<Cgroup>,
    init: Arc<Process>,
    /// The prepared container, with the state as last persisted.
    prepared: Mutex<Prepared>,
    /// Taken by the one Start that spawns the VMM.
    confined: Mutex<Option<ConfinedVmm>>,
    /// Delete may be retried after a failure; the poststop hooks run once.
    poststop_ran: AtomicBool,
    created_at: Instant,
}

/// The VMM's program (absolute, visible at the same path inside its root) and its
/// confinement, prepared at Create.
struct ConfinedVmm {
    program: PathBuf,
    confinement: Confinement,
    /// The spec's `linux.seccomp`, compiled at Create so a profile that cannot be honoured
    /// fails Create; installed last in the child, after the confinement dropped privileges.
    seccomp: Option<SeccompFilter>,
}

/// What Create planned: the VMM invocation and what it was built from.
struct Planned {
    vmm: VmmPlan,
    /// `[monitors.<vmm>] path` of the node configuration: the VMM binary to run instead of
    /// the plan's program looked up in PATH.
    program_override: Option<String>,
    input: VmmInput,
    vmm_dir: PathBuf,
    cgroup: Option<Cgroup>,
}

impl UnikernelContainer {
    pub async fn create(
        context: ShimContext,
        prepared: Prepared,
        config: UruncConfig,
    ) -> Result<Self> {
        let created_at = Instant::now();
        let prepared = Mutex::new(prepared);
        let planned = async {
            let planned = plan(&context, &prepared, config).await?;
            let confined = confine_vmm(&prepared, &planned)?;
            for kind in [
                HookKind::Prestart,
                HookKind::CreateRuntime,
                HookKind::CreateContainer,
            ] {
                run_hooks(&context, &prepared, kind, Status::Creating, None).await?;
            }
            Ok((planned, confined))
        }
        .await;
        match planned {
            Ok((planned, confined)) => {
                let (id, bundle_text, stdio) = {
                    let p = lock(&prepared);
                    (p.id.clone(), p.bundle_text(), p.stdio.clone())
                };
                let plan = planned.vmm;
                tracing::info!(%id, program = %confined.program.display(), args = ?plan.args, "VMM planned");
                Ok(UnikernelContainer {
                    inner: Arc::new(Inner {
                        id,
                        bundle_text,
                        context,
                        plan,
                        hypervisor: planned.input.config.hypervisor,
                        cgroup: planned.cgroup,
                        init: Arc::new(Process::new("", stdio)),
                        prepared,
                        confined: Mutex::new(Some(confined)),
                        poststop_ran: AtomicBool::new(false),
                        created_at,
                    }),
                })
            }
            Err(error) => {
                let undo = undo(&context, &prepared).await;
                Err(with_undo(error, undo))
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the spec's hooks of `kind` with the container's state as it is now.
async fn run_hooks(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    kind: HookKind,
    status: Status,
    pid: Option<u32>,
) -> Result<()> {
    let (spec, state) = {
        let p = lock(prepared);
        let state = hooks::oci_state(&p.spec, &p.id, &p.bundle, status, pid);
        (p.spec.clone(), state)
    };
    hooks::run_spec_hooks(&context.router, kind, &spec, &state).await
}

/// Plans the VMM's confinement from the spec's process and the files the VMM needs; refuses an
/// impossible user or capability set before anything runs.
fn confine_vmm(prepared: &Mutex<Prepared>, planned: &Planned) -> Result<ConfinedVmm> {
    let (process, new_root, linux) = {
        let p = lock(prepared);
        (
            p.spec.process.clone(),
            p.store.dir().join(VMM_ROOT_DIR),
            p.spec.linux.clone(),
        )
    };
    // Refused here rather than at Start: what the VMM cannot be given (a user namespace, a
    // pid namespace path that does not open) fails Create and leaves nothing.
    NamespacePlan::from_spec(&linux.namespaces)?;
    PidNamespace::from_spec(&linux.namespaces)?;
    let seccomp = linux
        .seccomp
        .as_ref()
        .map(SeccompFilter::compile)
        .transpose()?;
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
        kernel: input.kernel.clone(),
        initrd: input.initrd.clone(),
        block: input.block.clone(),
        block_is_device: input.block.as_ref().is_some_and(|b| b.starts_with("/dev")),
        read_only: Vec::new(),
        writable_dirs: vec![planned.vmm_dir.clone()],
    };
    let search_path = host::vmm_search_path();
    let (plan, confinement) = confine::prepare(&ConfineRequest {
        program: planned
            .program_override
            .as_deref()
            .unwrap_or(&planned.vmm.program),
        search_path: &search_path,
        new_root: &new_root,
        guest: &guest,
        accel: input.accel,
        networked: input.network.is_some(),
        process: process.as_ref(),
    })?;
    Ok(ConfinedVmm {
        program: plan.program,
        confinement,
        seccomp,
    })
}

/// The spec's process user, who owns the VMM's directory, files and tap.
fn vmm_owner(spec: &Spec) -> (u32, u32) {
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

/// Everything Create does after the rootfs is mounted. On error the caller undoes it all.
async fn plan(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    config: UruncConfig,
) -> Result<Planned> {
    Prepared::persist_change(prepared, |state| state.kind = ContainerKind::Unikernel)?;
    let (id, rootfs, spec, store, request_mounts) = {
        let p = lock(prepared);
        (
            p.id.clone(),
            p.rootfs.clone(),
            p.spec.clone(),
            p.store.clone(),
            p.mounts.clone(),
        )
    };
    let block_rootfs::GuestFiles {
        kernel,
        initrd,
        block,
    } = block_rootfs::guest_files(&id, &rootfs, store.dir(), &request_mounts, &config)?;

    let cgroup = match &spec.linux.cgroups_path {
        Some(path) => Some(create_cgroup(prepared, path)?),
        None => None,
    };
    let network = match network_path(&spec.linux.namespaces) {
        Some(netns_path) => attach_network(context, prepared, &spec, &netns_path).await?,
        None => {
            tracing::info!(%id, "no network namespace path: the guest runs without network");
            None
        }
    };

    let source = lock(prepared).node_config.clone();
    let node_config = node_config::load_source(&source)?;
    Prepared::persist_change(prepared, |state| {
        state.node_config = Some(node_config.clone())
    })?;
    let monitor = node_config.monitor(config.hypervisor);
    let program_override = monitor.path.clone();
    let (memory_limit_bytes, vcpus) = monitor.apply(
        runtime_core::memory_limit_from_spec(&spec),
        runtime_core::vcpus_from_spec(&spec)?,
    );
    let program = program_override
        .clone()
        .unwrap_or_else(|| runtime_core::vmm_program(config.hypervisor, host::arch()).to_owned());
    let accel = accel_probe::choose(&context.router, config.hypervisor, &program).await?;
    tracing::info!(%id, accel = ?accel.accel, cpu_features_off = ?accel.cpu_features_off, reason = %accel.reason, "accelerator");
    let process = spec.process.clone().unwrap_or_default();
    let owner = vmm_owner(&spec);
    let vmm_dir = store.dir().join(VMM_DIR);
    create_dir(&vmm_dir, 0o700, Some(owner))?;
    let extra_kernel_args = match config.unikernel_type {
        UnikernelType::Linux => host::tsc_early_khz_arg().into_iter().collect(),
        _ => Vec::new(),
    };
    let solo5_manifest = solo5_manifest(&id, &config, &kernel)?;
    let input = VmmInput {
        memory_limit_bytes,
        vcpus,
        env: process.env,
        args: process.args,
        accel: accel.accel,
        arch: host::arch(),
        cpu_features_off: accel.cpu_features_off,
        solo5_manifest,
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
    let plan = runtime_core::plan_vmm(&input)?;
    for file in &plan.files {
        write_private(&file.path, &file.contents, owner)?;
    }
    log_network(&id, network.as_ref());
    Ok(Planned {
        vmm: plan,
        program_override,
        input,
        vmm_dir,
        cgroup,
    })
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
fn create_cgroup(prepared: &Mutex<Prepared>, cgroups_path: &str) -> Result<Cgroup> {
    let cgroup = Cgroup::from_spec_path(cgroups_path)?;
    Prepared::persist_change(prepared, |state| state.cgroup_dirs = cgroup.dirs.clone())?;
    cgroup.create()?;
    Ok(cgroup)
}

/// Creates the tap and redirect in the sandbox at `netns_path` through its netns worker. The
/// worker persists the record (through the state store) before it creates anything.
async fn attach_network(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    spec: &Spec,
    netns_path: &std::path::Path,
) -> Result<Option<GuestNetwork>> {
    let (id, store, mut state) = {
        let p = lock(prepared);
        (p.id.clone(), p.store.clone(), p.state.clone())
    };
    let (uid, gid) = vmm_owner(spec);
    let request = AttachRequest {
        container_id: id.clone(),
        owner_uid: uid,
        owner_gid: gid,
        persist: Box::new(move |record: &NetRecord| {
            state.net = Some(record.clone());
            store.write(&state)
        }),
    };
    let mode = network_mode(spec);
    match context
        .pool
        .attach_in_mode(netns_path, request, mode)
        .await?
    {
        AttachOutcome::Attached { record, guest } => {
            lock(prepared).state.net = Some(record);
            Ok(Some(guest))
        }
        AttachOutcome::NoNetwork => {
            tracing::info!(%id, netns = %netns_path.display(), "sandbox has no eth0: the guest runs without network");
            Ok(None)
        }
    }
}

/// The annotation CRI sets to the container's name in the pod.
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// urunc's rule: Knative's `user-container` gets the static network (guest 172.16.1.2 behind
/// the tap, masqueraded out of eth0), because Knative's queue-proxy in the same pod must reach
/// it at a fixed address; every other unikernel takes over eth0 through the tc redirect.
fn network_mode(spec: &Spec) -> NetworkMode {
    let name = spec.annotations.get(CRI_CONTAINER_NAME);
    if name.map(String::as_str) == Some("user-container") {
        NetworkMode::StaticNat
    } else {
        NetworkMode::Redirect
    }
}

fn log_network(id: &str, network: Option<&GuestNetwork>) {
    if let Some(net) = network {
        tracing::info!(%id, tap = %net.tap, ip = %net.ipv4, prefix = net.prefix_len, mac = %net.mac, "guest network");
    }
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

/// Detaches the network if attached, removes the cgroup, unmounts, and removes the state once
/// all of that succeeded (`teardown`). Every step is attempted; every failure is reported.
async fn undo(context: &ShimContext, prepared: &Mutex<Prepared>) -> Result<()> {
    let (state, store, runc) = {
        let p = lock(prepared);
        let runc = Runc::new(&context.namespace, &p.bundle, context.router.clone());
        (p.state.clone(), p.store.clone(), runc)
    };
    teardown::teardown(&state, &store, &runc, &context.pool).await
}

/// Detaches (and verifies) the container's network; forgets the record once it is gone.
async fn detach_network(context: &ShimContext, prepared: &Mutex<Prepared>) -> Result<()> {
    let record = lock(prepared).state.net.clone();
    let Some(record) = record else {
        return Ok(());
    };
    context.pool.detach(&record).await?;
    Prepared::persist_change(prepared, |state| state.net = None)
}

impl Inner {
    fn watch_exit(
        self: &Arc<Self>,
        exit: oneshot::Receiver<ExitCode>,
        stderr: Option<StderrTee>,
        started_at: Instant,
    ) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            // A dropped sender means the reaper is gone; report the VMM as lost.
            let status = exit.await.unwrap_or(255);
            let died_at = Instant::now();
            let pid = inner.init.snapshot().pid;
            if let Some(tee) = stderr {
                inner
                    .report_early_exit(&tee, status, died_at - started_at)
                    .await;
            }
            // Invariant 2: the network is gone (and verified) before TaskExit.
            if let Err(error) = detach_network(&inner.context, &inner.prepared).await {
                tracing::error!(id = %inner.id, %error, "network teardown after VMM exit failed; Delete will retry");
            }
            if inner.cgroup.as_ref().is_some_and(Cgroup::oom_killed) {
                inner.context.exits.oom_killed(&inner.id);
            }
            let exit = inner.init.set_stopped(status);
            tracing::info!(
                id = %inner.id,
                pid,
                status,
                exit_to_event_us = died_at.elapsed().as_micros() as u64,
                "VMM exited"
            );
            inner.context.exits.exited(ExitReport {
                container_id: inner.id.clone(),
                exec_id: String::new(),
                pid,
                exit_status: status,
                exited_at: exit.at,
            });
        });
    }

    /// A VMM that died right after its start: why, from its stderr, in the shim's log and as
    /// the last line of the container's stderr (what `ctr` and the CRI log show).
    async fn report_early_exit(&self, tee: &StderrTee, status: ExitCode, ran: Duration) {
        let program = &self.plan.program;
        let mut report = None;
        tee.finish(|tail| {
            report = runtime_core::early_exit_message(program, status, ran, tail);
            report.clone()
        })
        .await;
        if let Some(report) = report {
            tracing::error!(id = %self.id, %report, "the VMM died right after its start");
        }
    }

    fn start_vmm(self: &Arc<Self>) -> Result<u32> {
        let ConfinedVmm {
            program,
            confinement,
            seccomp,
        } = lock(&self.confined)
            .take()
            .ok_or_else(|| ShimError::precondition(&self.id, "the VMM was already started"))?;
        // Copied out so the FIFOs and the console are opened without the container's lock.
        let (paths, namespaces) = {
            let p = lock(&self.prepared);
            (p.stdio.clone(), p.spec.linux.namespaces.clone())
        };
        // On a terminal the VMM's stderr is the pty, shared with its console: not teed.
        let (stdio, stderr_tee) = if paths.terminal {
            let (console, slave) = Console::open()?;
            self.init
                .set_stdin(console.start_copying(&self.id, &paths)?);
            self.init.set_console(console);
            (ProcessStdio::terminal(slave)?, None)
        } else {
            let (mut stdio, stdin) = paths.open(&self.id)?;
            self.init.set_stdin(stdin);
            let (vmm_stderr, tee) = stderr_tee::interpose(&self.id, stdio.stderr)?;
            stdio.stderr = vmm_stderr;
            (stdio, Some(tee))
        };
        let pid_namespace = PidNamespace::from_spec(&namespaces)?;
        let setup = ChildSetup {
            namespaces: NamespacePlan::from_spec(&namespaces)?,
            cgroup_procs: match &self.cgroup {
                Some(cgroup) => cgroup.procs_files()?,
                None => Vec::new(),
            },
        };
        let env = vec![("PATH".to_string(), host::vmm_search_path())];
        let program_text = program.display().to_string();
        let mut command = container_command(&program_text, &self.plan.args, &env, stdio, setup);
        // argv[0] stays the plan's program name, as ps and the host's tools know the VMM.
        command.arg0(&self.plan.program);
        // After the namespace and cgroup hooks container_command registered: those need the
        // privileges the confinement drops.
        confinement.install(&mut command);
        if matches!(pid_namespace, PidNamespace::Fresh) {
            // The VMM would be pid 1, which never sees a SIGTERM it has no handler for.
            signal_init::install(&mut command);
        }
        if let Some(filter) = seccomp {
            // Last: the profile may forbid what the confinement itself does (unshare, mount).
            filter.install_last(&mut command);
        }
        let started_at = Instant::now();
        let spawned = pid_namespace.spawn(&self.context.router, &mut command);
        // The pipe's write end is the VMM's alone: the copy sees EOF when it dies.
        drop(command);
        if spawned.is_err() {
            self.init.close_stdin();
        }
        let (child, exit) = spawned.map_err(|e| {
            ShimError::io(
                format!("start VMM {program_text} confined (the container's stderr has the failed step)"),
                e,
            )
        })?;
        let pid = child.id();
        tracing::info!(
            id = %self.id,
            pid,
            create_to_exec_us = self.created_at.elapsed().as_micros() as u64,
            "VMM started"
        );
        self.init.set_running(pid);
        self.watch_exit(exit, stderr_tee, started_at);
        Prepared::persist_change(&self.prepared, |state| {
            state.vmm = ProcessIdentity::of(pid as i32)
        })?;
        Ok(pid)
    }

    /// SIGTERM/SIGINT's graceful path: true when the guest was asked to power off (the VMM
    /// keeps running until it does), false when the signal must go to the VMM.
    async fn request_powerdown(&self, signal: Signal) -> bool {
        match &self.plan.graceful_stop {
            GracefulStop::QmpPowerdown { socket } => {
                match crate::qmp::request_powerdown(socket, QMP_TIMEOUT).await {
                    Ok(()) => {
                        tracing::info!(id = %self.id, %signal, "asked the guest to power off (QMP system_powerdown); SIGKILL ends it if it does not");
                        true
                    }
                    Err(error) => {
                        tracing::warn!(id = %self.id, %signal, %error, "QMP unreachable: delivering the signal to the VMM instead");
                        false
                    }
                }
            }
            GracefulStop::FirecrackerCtrlAltDel { socket } => {
                tracing::error!(id = %self.id, %signal, socket = %socket.display(), "firecracker's Ctrl-Alt-Del is not implemented by this shim: delivering the signal to the VMM");
                false
            }
            GracefulStop::Signal => {
                if self.hypervisor == Hypervisor::Firecracker {
                    tracing::info!(id = %self.id, %signal, "firecracker runs with --no-api (as under urunc): no Ctrl-Alt-Del for the guest; the signal goes to the VMM, which it ends without a guest shutdown");
                }
                false
            }
        }
    }

    /// The poststop hooks, once, after everything else of the container is gone.
    async fn poststop(&self) -> Result<()> {
        if self.poststop_ran.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let pid = self.init.snapshot().pid;
        let pid = (pid != 0).then_some(pid);
        let outcome = run_hooks(
            &self.context,
            &self.prepared,
            HookKind::Poststop,
            Status::Stopped,
            pid,
        )
        .await;
        if let Err(error) = &outcome {
            tracing::error!(id = %self.id, %error, "poststop hooks failed (the container is deleted)");
        }
        outcome
    }
}

#[async_trait]
impl Container for UnikernelContainer {
    fn bundle(&self) -> &str {
        &self.inner.bundle_text
    }

    fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            Ok(self.inner.init.clone())
        } else {
            Err(ShimError::ProcessNotFound {
                id: self.inner.id.clone(),
                exec_id: exec_id.to_string(),
            })
        }
    }

    async fn start(&self, exec_id: &str) -> Result<u32> {
        if !exec_id.is_empty() {
            return Err(unikernel_exec());
        }
        if self.inner.init.snapshot().phase != Phase::Created {
            return Err(ShimError::precondition(
                &self.inner.id,
                "the unikernel was already started",
            ));
        }
        let inner = &self.inner;
        run_hooks(
            &inner.context,
            &inner.prepared,
            HookKind::StartContainer,
            Status::Created,
            None,
        )
        .await?;
        let pid = inner.start_vmm()?;
        // runtime-spec: a poststart failure is a warning; the VMM runs on.
        if let Err(error) = run_hooks(
            &inner.context,
            &inner.prepared,
            HookKind::Poststart,
            Status::Running,
            Some(pid),
        )
        .await
        {
            tracing::warn!(id = %inner.id, %error, "poststart hooks failed; the VMM keeps running");
        }
        Ok(pid)
    }

    async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let process = self.process(exec_id)?;
        let snapshot = process.snapshot();
        if matches!(snapshot.phase, Phase::Stopped | Phase::Created) {
            return Err(ShimError::ProcessNotFound {
                id: self.inner.id.clone(),
                exec_id: format!("{exec_id} (the VMM is not running)"),
            });
        }
        let signal = Signal::try_from(signal as i32)
            .map_err(|_| ShimError::invalid("signal", signal.to_string(), "not a signal"))?;
        let graceful = matches!(signal, Signal::SIGTERM | Signal::SIGINT)
            && snapshot.phase == Phase::Running
            && self.inner.request_powerdown(signal).await;
        let mut pids = if graceful {
            Vec::new()
        } else {
            vec![snapshot.pid]
        };
        if all {
            if let Some(cgroup) = &self.inner.cgroup {
                pids.extend(
                    cgroup
                        .pids()?
                        .into_iter()
                        .filter(|pid| *pid != snapshot.pid),
                );
            }
        }
        for pid in pids {
            match kill(Pid::from_raw(pid as i32), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(error) => {
                    return Err(ShimError::sys(
                        format!("kill VMM pid {pid} with {signal}"),
                        error,
                    ))
                }
            }
        }
        Ok(())
    }

    async fn exec(&self, _request: &ExecProcessRequest) -> Result<()> {
        Err(unikernel_exec())
    }

    async fn delete_exec(&self, exec_id: &str) -> Result<()> {
        Err(ShimError::ProcessNotFound {
            id: self.inner.id.clone(),
            exec_id: exec_id.to_string(),
        })
    }

    async fn teardown(&self) -> Result<()> {
        undo(&self.inner.context, &self.inner.prepared).await?;
        self.inner.poststop().await
    }

    async fn pause(&self) -> Result<()> {
        self.freezer(true)
    }

    async fn resume(&self) -> Result<()> {
        self.freezer(false)
    }

    async fn pids(&self) -> Result<Vec<ProcessInfo>> {
        let pid = self.inner.init.snapshot().pid;
        let pids = match &self.inner.cgroup {
            Some(cgroup) => cgroup.pids()?,
            None if pid != 0 => vec![pid],
            None => Vec::new(),
        };
        Ok(pids
            .into_iter()
            .map(|pid| ProcessInfo {
                pid,
                ..Default::default()
            })
            .collect())
    }

    async fn update(&self, request: &UpdateTaskRequest) -> Result<()> {
        if request.resources.is_none() && request.annotations.is_empty() {
            return Ok(());
        }
        Err(ShimError::precondition(
            &self.inner.id,
            "a running VMM's memory and vCPUs are fixed at boot; recreate the container to change its resources",
        ))
    }

    async fn close_io(&self, exec_id: &str) -> Result<()> {
        self.process(exec_id)?.close_stdin();
        Ok(())
    }

    async fn resize_pty(&self, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.process(exec_id)?.resize(&self.inner.id, width, height)
    }
}

impl UnikernelContainer {
    fn freezer(&self, frozen: bool) -> Result<()> {
        let cgroup = self.inner.cgroup.as_ref().ok_or_else(|| {
            ShimError::precondition(&self.inner.id, "the container has no cgroup to freeze")
        })?;
        cgroup.set_frozen(frozen)?;
        self.inner.init.set_paused(frozen);
        Ok(())
    }
}

fn unikernel_exec() -> ShimError {
    ShimError::Unimplemented {
        operation: "Exec",
        reason: "a unikernel is a single guest image: there is no process inside it to exec into"
            .to_string(),
    }
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
