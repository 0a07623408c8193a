//! A container without urunc configuration (the Kubernetes pause container, sidecars, plain
//! images), run by the `runc` CLI with containerd's runc-shim lifecycle: create, start, exec,
//! kill, delete. The init and exec'd processes are reparented to the shim (a subreaper) when
//! runc exits, and the shim's one reaper reports their exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::prepared::{with_undo, Prepared};
use super::process::{Phase, Process};
use super::process_ref::{ProcessMissing, ProcessRef};
use super::teardown;
use super::{Container, ExecRequest, ShimContext, UpdateRequest};
use crate::cgroup::{oom_kills_counted, ProcessCgroup};
use crate::console::ConsoleSocket;
use crate::error::{Result, ShimError};
use crate::events::ExitReport;
use crate::reaper::ExitCode;
use crate::runc::{Runc, RuncIo};
use crate::state::ContainerKind;

pub struct RuncContainer {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    bundle_text: String,
    runc: Runc,
    context: ShimContext,
    prepared: Prepared,
    init: Arc<Process>,
    execs: Mutex<HashMap<String, Exec>>,
    /// The init's cgroup file with the kernel's OOM kill counter, read once it runs.
    oom_counter: OnceLock<PathBuf>,
}

struct Exec {
    process: Arc<Process>,
    /// The OCI process JSON containerd sent, handed to `runc exec --process`.
    spec: Vec<u8>,
}

impl RuncContainer {
    /// `runc create` on the prepared bundle. On failure nothing is left: not runc's container,
    /// not the mount, not the state.
    pub async fn create(context: ShimContext, mut prepared: Prepared) -> Result<Self> {
        prepared.state.kind = ContainerKind::Runc;
        if let Err(error) = prepared.persist() {
            return Err(with_undo(error, prepared.undo()));
        }
        let annotations = prepared.spec.annotations.clone();
        if let Err(error) = point_queue_proxy_at_guest(&prepared.id, &prepared.bundle, &annotations)
        {
            return Err(with_undo(error, prepared.undo()));
        }
        let inner = Inner {
            id: prepared.id.clone(),
            bundle_text: prepared.bundle_text(),
            runc: Runc::new(&context.namespace, &prepared.bundle, context.router.clone()),
            context,
            init: Arc::new(Process::new(ProcessRef::Init, prepared.stdio.clone())),
            prepared,
            execs: Mutex::new(HashMap::new()),
            oom_counter: OnceLock::new(),
        };
        let created = inner.create_init().await;
        if created.is_err() {
            inner.init.close_stdin();
        }
        match created {
            Ok(exit) => {
                let inner = Arc::new(inner);
                inner.watch_exit(inner.init.clone(), exit);
                Ok(RuncContainer { inner })
            }
            Err(error) => Err(with_undo(error, inner.undo().await)),
        }
    }
}

/// urunc's queue-proxy rewrite (`runtime_core::rewrite_queue_proxy_env`): Knative's
/// queue-proxy must probe and proxy to the unikernel's static address, not to 127.0.0.1. The
/// bundle's `config.json` is edited as JSON (fields this shim does not model are kept) and
/// replaced atomically before `runc create` reads it.
fn point_queue_proxy_at_guest(
    id: &str,
    bundle: &Path,
    annotations: &HashMap<String, String>,
) -> Result<()> {
    if !runtime_core::is_queue_proxy(annotations) {
        return Ok(());
    }
    let path = bundle.join("config.json");
    let text = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| ShimError::io(format!("read {text}"), e))?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| ShimError::Json {
            path: path.clone(),
            source,
        })?;
    let env: Vec<String> = match config.pointer("/process/env") {
        Some(env) => serde_json::from_value(env.clone()).map_err(|source| ShimError::Json {
            path: path.clone(),
            source,
        })?,
        None => Vec::new(),
    };
    let rewritten = runtime_core::rewrite_queue_proxy_env(&env, netns::STATIC_GUEST_IP)?;
    match config.pointer_mut("/process") {
        Some(serde_json::Value::Object(process)) => {
            process.insert("env".into(), rewritten.into());
        }
        _ => {
            return Err(ShimError::invalid(
                "process",
                text,
                "the queue-proxy container has no process to point at the guest",
            ))
        }
    }
    let updated = serde_json::to_vec_pretty(&config).map_err(|source| ShimError::Json {
        path: path.clone(),
        source,
    })?;
    let temporary = bundle.join(".config.json.queue-proxy");
    let permissions = std::fs::metadata(&path)
        .map_err(|e| ShimError::io(format!("stat {text}"), e))?
        .permissions();
    std::fs::write(&temporary, updated)
        .and_then(|()| std::fs::set_permissions(&temporary, permissions))
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|e| ShimError::io(format!("replace {text}"), e))?;
    tracing::info!(%id, "queue-proxy: readiness probe and REDIRECT_IP point at {}", netns::STATIC_GUEST_IP);
    Ok(())
}

impl Inner {
    async fn create_init(&self) -> Result<oneshot::Receiver<ExitCode>> {
        let (io, console) = process_io(&self.id, &self.init)?;
        let pid_file = self.prepared.bundle.join("init.pid");
        self.runc
            .create(&self.id, &self.prepared.bundle, &pid_file, io)
            .await?;
        attach_console(&self.id, &self.init, console)?;
        let pid = read_pid(&pid_file)?;
        self.init.set_pid(pid);
        // Where runc put the container is read from the kernel, not from the spec: runc's
        // cgroupfs driver takes a `slice:prefix:name` cgroupsPath as one directory name
        // below its own cgroup, where systemd would make a scope of it.
        match ProcessCgroup::of_pid(pid).map(|cgroup| cgroup.oom_counter()) {
            Ok(Some(file)) => {
                let _ = self.oom_counter.set(file);
            }
            Ok(None) => {
                tracing::warn!(id = %self.id, pid, "no memory cgroup: OOM kills cannot be told")
            }
            Err(error) => {
                tracing::warn!(id = %self.id, pid, %error, "OOM kills cannot be told")
            }
        }
        Ok(self.context.router.watch(pid as i32))
    }

    /// Reports the exit of `process` once the reaper sees it.
    fn watch_exit(self: &Arc<Self>, process: Arc<Process>, exit: oneshot::Receiver<ExitCode>) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            // A dropped sender means the reaper is gone; report the process as lost.
            let status = exit.await.unwrap_or(255);
            let pid = process.snapshot().pid;
            // CRI gives a container the reason OOMKilled only on a TaskOOM event (containerd's
            // runc shim publishes one from the cgroup's OOM notification); runc keeps the
            // cgroup until `runc delete`, so its OOM counter is still there to read.
            if process.which.is_init() && inner.init_oom_killed() {
                tracing::info!(id = %inner.id, pid, "the OOM killer killed a task of the container");
                inner.context.exits.oom_killed(&inner.id);
            }
            let exit = process.set_stopped(status);
            tracing::info!(id = %inner.id, process = %process.which, pid, status, "process exited");
            inner.context.exits.exited(ExitReport {
                container_id: inner.id.clone(),
                exec_id: process.which.exec_id().to_string(),
                pid,
                exit_status: status,
                exited_at: exit.at,
            });
        });
    }

    /// Whether the kernel's OOM killer killed a task of the container's cgroup.
    fn init_oom_killed(&self) -> bool {
        self.oom_counter
            .get()
            .is_some_and(|file| oom_kills_counted(file))
    }

    /// Removes what create made: runc's container, the rootfs mount, the state.
    async fn undo(&self) -> Result<()> {
        let prepared = &self.prepared;
        teardown::teardown(
            &prepared.state,
            &prepared.store,
            &self.runc,
            &self.context.pool,
            teardown::no_poststop(),
        )
        .await
    }

    fn exec_process(&self, exec_id: &str) -> Result<Arc<Process>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(exec_id)
            .map(|exec| exec.process.clone())
            .ok_or_else(|| unknown_exec(&self.id, exec_id))
    }

    async fn start_exec(self: &Arc<Self>, exec_id: &str) -> Result<u32> {
        let (process, spec) = {
            let execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
            let exec = execs
                .get(exec_id)
                .ok_or_else(|| unknown_exec(&self.id, exec_id))?;
            (exec.process.clone(), exec.spec.clone())
        };
        let process_json = self.prepared.bundle.join(format!("exec-{exec_id}.json"));
        std::fs::write(&process_json, spec)
            .map_err(|e| ShimError::io(format!("write {}", process_json.display()), e))?;
        let pid_file = self.prepared.bundle.join(format!("exec-{exec_id}.pid"));
        let (io, console) = process_io(&format!("{}-{exec_id}", self.id), &process)?;
        let ran = self.runc.exec(&self.id, &process_json, &pid_file, io).await;
        let removed = std::fs::remove_file(&process_json);
        if ran.is_err() {
            process.close_stdin();
        }
        ran?;
        attach_console(&self.id, &process, console)?;
        removed.map_err(|e| ShimError::io(format!("remove {}", process_json.display()), e))?;
        let pid = read_pid(&pid_file)?;
        std::fs::remove_file(&pid_file)
            .map_err(|e| ShimError::io(format!("remove {}", pid_file.display()), e))?;
        let exit = self.context.router.watch(pid as i32);
        process.set_running(pid);
        self.watch_exit(process, exit);
        Ok(pid)
    }
}

/// Where runc's console sockets live: short paths (a socket path has at most 107 bytes).
const CONSOLE_SOCKET_DIR: &str = "/run/urunc-rs/.console";

/// The FIFOs for a process without a terminal; a console socket for runc otherwise.
fn process_io(name: &str, process: &Process) -> Result<(RuncIo, Option<ConsoleSocket>)> {
    if !process.stdio.terminal {
        let (stdio, stdin) = process.stdio.open(name)?;
        process.set_stdin(stdin);
        return Ok((RuncIo::Fifos(stdio), None));
    }
    let socket = ConsoleSocket::bind(Path::new(CONSOLE_SOCKET_DIR), &short_name(name))?;
    Ok((RuncIo::Terminal(socket.path().to_path_buf()), Some(socket)))
}

/// Takes the pty master runc sent and starts copying it to and from the FIFOs.
fn attach_console(id: &str, process: &Process, socket: Option<ConsoleSocket>) -> Result<()> {
    let Some(socket) = socket else {
        return Ok(());
    };
    let console = socket.receive()?;
    process.set_stdin(console.start_copying(id, &process.stdio)?);
    process.set_console(console);
    Ok(())
}

/// A short, stable file name for `name` (container and exec ids can be 64+ characters).
fn short_name(name: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    format!("{}-{:016x}", std::process::id(), hasher.finish())
}

/// runc's answer to a kill of a container whose init has exited.
fn is_not_running(error: &ShimError) -> bool {
    matches!(error, ShimError::Runc { stderr, .. } if stderr.contains("container not running"))
}

fn unknown_exec(id: &str, exec_id: &str) -> ShimError {
    ShimError::process_not_found(
        id,
        &ProcessRef::Exec(exec_id.to_string()),
        ProcessMissing::Unknown,
    )
}

fn read_pid(pid_file: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| ShimError::io(format!("read {}", pid_file.display()), e))?;
    text.trim().parse().map_err(|_| {
        ShimError::invalid(
            "pid file",
            text.trim(),
            format!("{} holds no pid", pid_file.display()),
        )
    })
}

#[async_trait]
impl Container for RuncContainer {
    fn id(&self) -> &str {
        &self.inner.id
    }

    fn bundle(&self) -> &str {
        &self.inner.bundle_text
    }

    fn process(&self, process: &ProcessRef) -> Result<Arc<Process>> {
        match process {
            ProcessRef::Init => Ok(self.inner.init.clone()),
            ProcessRef::Exec(exec_id) => self.inner.exec_process(exec_id),
        }
    }

    async fn start(&self, process: &ProcessRef) -> Result<u32> {
        if let ProcessRef::Exec(exec_id) = process {
            return self.inner.start_exec(exec_id).await;
        }
        let init = &self.inner.init;
        if init.snapshot().phase != Phase::Created {
            return Err(ShimError::precondition(
                &self.inner.id,
                "the container was already started",
            ));
        }
        self.inner.runc.start(&self.inner.id).await?;
        let pid = init.snapshot().pid;
        init.set_running(pid);
        Ok(pid)
    }

    async fn kill(&self, which: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        let process = self.process(which)?;
        let snapshot = process.snapshot();
        let finished =
            || ShimError::process_not_found(&self.inner.id, which, ProcessMissing::Exited);
        if snapshot.phase == Phase::Stopped {
            if which.is_init() && all {
                // The init is gone, but in a pod's shared pid namespace what it started lives
                // on in the container's cgroup and holds the container's stdio open, so
                // containerd waits for it; `runc kill --all` still reaches the cgroup, as
                // containerd's runc shim does after its init died.
                return match self.inner.runc.kill(&self.inner.id, signal, true).await {
                    Err(error) if is_not_running(&error) => Err(finished()),
                    answer => answer,
                };
            }
            return Err(finished());
        }
        if which.is_init() {
            // The init can die between the phase check and runc's: runc then answers "container
            // not running" before the reaper marked it stopped. That is the same answer as
            // above, as containerd's runc shim gives it (CRI takes NotFound as already stopped).
            return match self.inner.runc.kill(&self.inner.id, signal, all).await {
                Err(error) if is_not_running(&error) => Err(finished()),
                answer => answer,
            };
        }
        if snapshot.phase == Phase::Created {
            // A registered exec has no pid until its Start: kill(0) would signal the shim's
            // own process group.
            return Err(ShimError::process_not_found(
                &self.inner.id,
                which,
                ProcessMissing::NotStarted,
            ));
        }
        let signal = crate::container::process::signal(signal)?;
        match kill(Pid::from_raw(snapshot.pid as i32), signal) {
            Err(nix::errno::Errno::ESRCH) => Err(finished()),
            answer => {
                answer.map_err(|e| ShimError::sys(format!("kill {which} pid {}", snapshot.pid), e))
            }
        }
    }

    async fn exec(&self, request: ExecRequest) -> Result<()> {
        let mut execs = self.inner.execs.lock().unwrap_or_else(|p| p.into_inner());
        if execs.contains_key(&request.exec_id) {
            return Err(ShimError::AlreadyExists {
                id: format!("{}/{}", self.inner.id, request.exec_id),
            });
        }
        let which = ProcessRef::Exec(request.exec_id.clone());
        execs.insert(
            request.exec_id,
            Exec {
                process: Arc::new(Process::new(which, request.stdio)),
                spec: request.spec,
            },
        );
        Ok(())
    }

    async fn delete_exec(&self, exec_id: &str) -> Result<()> {
        let mut execs = self.inner.execs.lock().unwrap_or_else(|p| p.into_inner());
        match execs.get(exec_id).map(|e| e.process.snapshot().phase) {
            None => Err(unknown_exec(&self.inner.id, exec_id)),
            Some(Phase::Running) | Some(Phase::Paused) => Err(ShimError::precondition(
                &self.inner.id,
                format!("exec {exec_id} is still running"),
            )),
            Some(_) => {
                execs.remove(exec_id);
                Ok(())
            }
        }
    }

    async fn teardown(&self) -> Result<()> {
        self.inner.undo().await
    }

    async fn pause(&self) -> Result<()> {
        self.inner.runc.pause(&self.inner.id).await?;
        self.inner.init.set_paused(true);
        Ok(())
    }

    async fn resume(&self) -> Result<()> {
        self.inner.runc.resume(&self.inner.id).await?;
        self.inner.init.set_paused(false);
        Ok(())
    }

    async fn pids(&self) -> Result<Vec<u32>> {
        self.inner.runc.ps(&self.inner.id).await
    }

    async fn update(&self, request: UpdateRequest) -> Result<()> {
        let Some(resources) = request.resources else {
            return Ok(());
        };
        // containerd sends the OCI LinuxResources as JSON (typeurl's encoding of a Go struct).
        let file = self.inner.prepared.bundle.join("update-resources.json");
        std::fs::write(&file, &resources)
            .map_err(|e| ShimError::io(format!("write {}", file.display()), e))?;
        let updated = self.inner.runc.update(&self.inner.id, &file).await;
        let removed = std::fs::remove_file(&file)
            .map_err(|e| ShimError::io(format!("remove {}", file.display()), e));
        updated.and(removed)
    }
}

#[cfg(test)]
mod queue_proxy_tests {
    use super::*;
    use runtime_core::knative::{QUEUE_PROXY, USER_CONTAINER};
    use std::os::unix::fs::PermissionsExt;

    fn annotations(name: &str) -> HashMap<String, String> {
        HashMap::from([(
            runtime_core::knative::CRI_CONTAINER_NAME.to_string(),
            name.to_string(),
        )])
    }

    fn bundle_with(config: &serde_json::Value) -> tempfile::TempDir {
        let bundle = tempfile::tempdir().expect("bundle");
        let path = bundle.path().join("config.json");
        std::fs::write(&path, config.to_string()).expect("config.json");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        bundle
    }

    #[test]
    fn the_queue_proxy_bundle_is_rewritten_keeping_everything_else() {
        let config = serde_json::json!({
            "ociVersion": "1.1.0",
            "process": {"args": ["/ko-app/queue"], "env": [
                "PATH=/bin",
                "SERVING_READINESS_PROBE={\"tcpSocket\":{\"port\":8080,\"host\":\"127.0.0.1\"}}"
            ]},
            "x-field-this-shim-does-not-model": {"kept": true},
        });
        let bundle = bundle_with(&config);
        point_queue_proxy_at_guest("qp", bundle.path(), &annotations(QUEUE_PROXY))
            .expect("rewrites");
        let guest = netns::STATIC_GUEST_IP;
        let path = bundle.path().join("config.json");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(
            written["process"]["env"],
            serde_json::json!([
                "PATH=/bin",
                format!("SERVING_READINESS_PROBE={{\"tcpSocket\":{{\"host\":\"{guest}\",\"port\":8080}}}}"),
                format!("REDIRECT_IP={guest}"),
            ])
        );
        assert_eq!(
            written["x-field-this-shim-does-not-model"],
            config["x-field-this-shim-does-not-model"]
        );
        assert_eq!(written["process"]["args"], config["process"]["args"]);
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(bundle.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["config.json"], "a temporary file was left");
    }

    #[test]
    fn runc_saying_not_running_is_told_from_other_kill_failures() {
        let runc = |stderr: &str| ShimError::Runc {
            args: "kill c 9".into(),
            status: 1,
            stderr: stderr.into(),
        };
        assert!(is_not_running(&runc("container not running")));
        assert!(!is_not_running(&runc("permission denied")));
        assert!(!is_not_running(&ShimError::NotFound { id: "c".into() }));
    }

    #[test]
    fn other_containers_are_untouched() {
        let config = serde_json::json!({"process": {"env": ["SERVING_READINESS_PROBE=not json"]}});
        let bundle = bundle_with(&config);
        point_queue_proxy_at_guest("uc", bundle.path(), &annotations(USER_CONTAINER))
            .expect("nothing to do");
        let text = std::fs::read_to_string(bundle.path().join("config.json")).expect("read");
        assert_eq!(text, config.to_string());
    }

    #[test]
    fn a_probe_that_is_not_json_fails_create_naming_it() {
        let config = serde_json::json!({"process": {"env": ["SERVING_READINESS_PROBE=host:1"]}});
        let bundle = bundle_with(&config);
        let error = point_queue_proxy_at_guest("qp", bundle.path(), &annotations(QUEUE_PROXY))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("SERVING_READINESS_PROBE") && error.contains("host:1"),
            "{error}"
        );
    }
}
