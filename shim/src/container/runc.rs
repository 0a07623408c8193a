//! A container without urunc configuration (the Kubernetes pause container, sidecars, plain
//! images), run by the `runc` CLI with containerd's runc-shim lifecycle: create, start, exec,
//! kill, delete. The init and exec'd processes are reparented to the shim (a subreaper) when
//! runc exits, and the shim's one reaper reports their exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::core::{ContainerCore, Exec, ExitFindings, ExitSteps, NoExitSteps};
use super::kind::Kind;
use super::prepared::{with_undo, Prepared};
use super::process::{Phase, Process};
use super::process_ref::ProcessMissing;
use super::teardown;
use super::{Container, ShimContext, UpdateRequest};
use crate::cgroup::{oom_kills_counted, ProcessCgroup};
use crate::console::ConsoleSocket;
use crate::error::{Result, ShimError};
use crate::reaper::ExitCode;
use crate::runc::{Runc, RuncIo};
use crate::state;

pub struct RuncKind {
    core: Arc<ContainerCore>,
    runc: Runc,
    context: ShimContext,
    prepared: Prepared,
}

impl RuncKind {
    /// `runc create` on the prepared bundle. On failure nothing is left: not runc's container,
    /// not the mount, not the state.
    pub async fn create(context: ShimContext, mut prepared: Prepared) -> Result<Container> {
        prepared.state.kind = state::ContainerKind::Runc;
        if let Err(error) = prepared.persist() {
            return Err(with_undo(error, prepared.undo()));
        }
        let annotations = prepared.spec.annotations.clone();
        if let Err(error) = point_queue_proxy_at_guest(&prepared.id, &prepared.bundle, &annotations)
        {
            return Err(with_undo(error, prepared.undo()));
        }
        let core = ContainerCore::of_prepared(&prepared, context.exits.clone());
        let kind = RuncKind {
            core: core.clone(),
            runc: Runc::new(&context.namespace, &prepared.bundle, context.router.clone()),
            context,
            prepared,
        };
        match kind.create_init().await {
            Ok((exit, steps)) => {
                core.watch_exit(core.init().clone(), exit, Box::new(steps));
                Ok(Container::new(core, Box::new(kind)))
            }
            Err(error) => {
                core.init().close_stdin();
                Err(with_undo(error, kind.undo().await))
            }
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

impl RuncKind {
    fn id(&self) -> &str {
        self.core.id()
    }

    async fn create_init(&self) -> Result<(oneshot::Receiver<ExitCode>, InitExit)> {
        let init = self.core.init();
        let (io, console) = process_io(self.id(), init)?;
        let pid_file = self.prepared.bundle.join("init.pid");
        self.runc
            .create(self.id(), &self.prepared.bundle, &pid_file, io)
            .await?;
        attach_console(self.id(), init, console)?;
        let pid = read_pid(&pid_file)?;
        init.set_pid(pid);
        // Where runc put the container is read from the kernel, not from the spec: runc's
        // cgroupfs driver takes a `slice:prefix:name` cgroupsPath as one directory name
        // below its own cgroup, where systemd would make a scope of it.
        let oom_counter = match ProcessCgroup::of_pid(pid).map(|cgroup| cgroup.oom_counter()) {
            Ok(Some(file)) => Some(file),
            Ok(None) => {
                tracing::warn!(id = %self.id(), pid, "no memory cgroup: OOM kills cannot be told");
                None
            }
            Err(error) => {
                tracing::warn!(id = %self.id(), pid, %error, "OOM kills cannot be told");
                None
            }
        };
        Ok((
            self.context.router.watch(pid as i32),
            InitExit { oom_counter },
        ))
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
}

/// The init's exit: whether the OOM killer killed a task of the container, from the counter
/// of the init's cgroup.
struct InitExit {
    oom_counter: Option<PathBuf>,
}

#[async_trait]
impl ExitSteps for InitExit {
    async fn before_report(&mut self, _status: ExitCode) -> ExitFindings {
        // CRI gives a container the reason OOMKilled only on a TaskOOM event (containerd's
        // runc shim publishes one from the cgroup's OOM notification); runc keeps the cgroup
        // until `runc delete`, so its OOM counter is still there to read.
        ExitFindings {
            oom_killed: self
                .oom_counter
                .as_ref()
                .is_some_and(|file| oom_kills_counted(file)),
        }
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
impl Kind for RuncKind {
    async fn start_init(&self) -> Result<u32> {
        self.runc.start(self.id()).await?;
        let init = self.core.init();
        let pid = init.snapshot().pid;
        init.set_running(pid);
        Ok(pid)
    }

    fn check_exec(&self) -> Result<()> {
        Ok(())
    }

    async fn start_exec(&self, exec: &Exec) -> Result<u32> {
        let Exec { process, spec } = exec;
        let exec_id = process.which.exec_id();
        let process_json = self.prepared.bundle.join(format!("exec-{exec_id}.json"));
        std::fs::write(&process_json, spec)
            .map_err(|e| ShimError::io(format!("write {}", process_json.display()), e))?;
        let pid_file = self.prepared.bundle.join(format!("exec-{exec_id}.pid"));
        let (io, console) = process_io(&format!("{}-{exec_id}", self.id()), process)?;
        let ran = self
            .runc
            .exec(self.id(), &process_json, &pid_file, io)
            .await;
        let removed = std::fs::remove_file(&process_json);
        if ran.is_err() {
            process.close_stdin();
        }
        ran?;
        attach_console(self.id(), process, console)?;
        removed.map_err(|e| ShimError::io(format!("remove {}", process_json.display()), e))?;
        let pid = read_pid(&pid_file)?;
        std::fs::remove_file(&pid_file)
            .map_err(|e| ShimError::io(format!("remove {}", pid_file.display()), e))?;
        let exit = self.context.router.watch(pid as i32);
        process.set_running(pid);
        self.core
            .watch_exit(process.clone(), exit, Box::new(NoExitSteps));
        Ok(pid)
    }

    async fn kill_init(&self, signal: u32, all: bool) -> Result<()> {
        let init = self.core.init();
        let finished =
            || ShimError::process_not_found(self.id(), &init.which, ProcessMissing::Exited);
        // A stopped init with `all`: in a pod's shared pid namespace what it started lives on
        // in the container's cgroup and holds the container's stdio open, so containerd waits
        // for it; `runc kill --all` still reaches the cgroup, as containerd's runc shim does
        // after its init died.
        if init.snapshot().phase == Phase::Stopped && !all {
            return Err(finished());
        }
        // The init can die between the phase check and runc's: runc then answers "container
        // not running" before the reaper marked it stopped. That is the same answer as
        // above, as containerd's runc shim gives it (CRI takes NotFound as already stopped).
        match self.runc.kill(self.id(), signal, all).await {
            Err(error) if is_not_running(&error) => Err(finished()),
            answer => answer,
        }
    }

    async fn teardown(&self) -> Result<()> {
        self.undo().await
    }

    async fn freeze(&self, frozen: bool) -> Result<()> {
        match frozen {
            true => self.runc.pause(self.id()).await,
            false => self.runc.resume(self.id()).await,
        }
    }

    async fn pids(&self) -> Result<Vec<u32>> {
        self.runc.ps(self.id()).await
    }

    async fn update(&self, request: UpdateRequest) -> Result<()> {
        let Some(resources) = request.resources else {
            return Ok(());
        };
        // containerd sends the OCI LinuxResources as JSON (typeurl's encoding of a Go struct).
        let file = self.prepared.bundle.join("update-resources.json");
        std::fs::write(&file, &resources)
            .map_err(|e| ShimError::io(format!("write {}", file.display()), e))?;
        let updated = self.runc.update(self.id(), &file).await;
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
