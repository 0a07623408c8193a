//! OCI hooks (runtime-spec `config.md#posix-platform-hooks`), run by the shim for a unikernel.
//!
//! Each hook is a host program run with its `path`, `args` (argv\[0\] included), only its own
//! `env`, the container's state JSON on stdin and its `timeout`; it is spawned through the
//! [`ExitRouter`] (the shim's only reaper) in its own process group, so an expired timeout kills
//! the hook and whatever it started.
//!
//! Where each kind runs for a unikernel, whose "container process" is the VMM. The VMM is
//! forked and exec'd in one step at Start (there is no runc-style init waiting at Create: its
//! mount namespace and confinement exist only between its fork and its exec), so the moments
//! map as follows. "Runtime" hooks run in the shim's namespaces (the host's). "Container" hooks
//! run in the container's namespaces as far as they exist before the VMM: every namespace the
//! spec names by path (the pod's network, IPC and UTS namespaces under CRI; `ctr --with-ns`),
//! joined by the forked hook before it execs, never by a shim thread. The mount namespace is the
//! exception: a hook's path and its files are host paths, as for runc's createContainer hooks
//! before pivot_root.
//!
//! | kind              | when                                                        | namespaces | status   | pid       |
//! |-------------------|-------------------------------------------------------------|------------|----------|-----------|
//! | `prestart`        | Create: rootfs mounted, netns there (a fresh one if asked), before the guest network and the plan | runtime | creating | absent |
//! | `createRuntime`   | right after `prestart`                                      | runtime    | creating | absent    |
//! | `createContainer` | end of Create: network attached, plan built                 | container  | creating | absent    |
//! | `startContainer`  | Start, just before the VMM is spawned                       | container  | created  | absent    |
//! | `poststart`       | Start, right after the VMM was spawned, before Start answers | runtime   | running  | the VMM   |
//! | `poststop`        | Delete, after the VMM exited and everything it had was removed but its fresh netns (also from `shim delete` after a crash) | runtime | stopped | the former VMM |
//!
//! runtime-spec wants a pid once the container is `created`; a VMM has none before Start, so
//! `startContainer` hooks see none (the pod's namespaces are open to them by path instead).
//! `prestart` and `createRuntime` run before the tap is attached because they may make the
//! network it attaches to: nerdctl's CNI hook gives the namespace its eth0. It finds a
//! namespace the shim made (the spec asked for a new one) through the state's
//! `nerdctl/network-namespace` annotation, which nerdctl reads before `state.pid`.
//!
//! Failure semantics follow runtime-spec's lifecycle: a failing `prestart`, `createRuntime`,
//! `createContainer` or `startContainer` hook stops the remaining hooks of its kind and fails
//! the operation (the caller then tears down as after any failed Create/Start). `poststart` and
//! `poststop` failures are warnings: every hook of the kind still runs, each failure is logged,
//! and all of them are returned so the caller can log them without failing the lifecycle.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use runtime_core::oci::{Hook, Hooks, Namespace, Spec, State, Status};
use tokio::io::AsyncWriteExt;

use crate::container::prepared::load_spec;
use crate::error::{Result, ShimError};
use crate::reaper::{ExitCode, ExitRouter};
use crate::spawn::NamespacePlan;

/// How much of a failing hook's output its error quotes (the end, where the reason usually is).
const OUTPUT_TAIL_BYTES: u64 = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    /// The kind's name in config.json.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// runtime-spec: these run "in the container namespace".
    fn in_container_namespaces(self) -> bool {
        matches!(self, HookKind::CreateContainer | HookKind::StartContainer)
    }

    /// runtime-spec: these failures are warnings; the remaining hooks and the lifecycle go on.
    fn failure_is_warning(self) -> bool {
        matches!(self, HookKind::Poststart | HookKind::Poststop)
    }

    /// The hooks of this kind in the spec's `hooks` (empty when absent).
    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        match self {
            HookKind::Prestart => &hooks.prestart,
            HookKind::CreateRuntime => &hooks.create_runtime,
            HookKind::CreateContainer => &hooks.create_container,
            HookKind::StartContainer => &hooks.start_container,
            HookKind::Poststart => &hooks.poststart,
            HookKind::Poststop => &hooks.poststop,
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state runtime-spec hands to hooks (`runtime.md#state`).
pub fn oci_state(
    spec: &Spec,
    id: &str,
    bundle: &std::path::Path,
    status: Status,
    pid: Option<u32>,
) -> State {
    State {
        oci_version: spec.oci_version.clone(),
        id: id.to_string(),
        status,
        pid,
        bundle: bundle.to_path_buf(),
        annotations: spec.annotations.clone(),
    }
}

/// Runs the spec's hooks of `kind`, if any (see [`run_hooks`]).
pub async fn run_spec_hooks(
    router: &ExitRouter,
    kind: HookKind,
    spec: &Spec,
    state: &State,
) -> Result<()> {
    let hooks = kind.select(&spec.hooks);
    run_hooks(router, kind, hooks, state, &spec.linux.namespaces).await
}

/// `containerd-shim-urunc-v2 delete` after a crash: the poststop hooks of the unikernel whose
/// teardown it just finished, with the spec read from the bundle, through that process's one
/// reaper `router`.
pub async fn poststop_after_crash(
    router: &ExitRouter,
    bundle: &std::path::Path,
    id: &str,
    pid: u32,
) -> Result<()> {
    let spec = load_spec(bundle)?;
    if spec.hooks.poststop.is_empty() {
        return Ok(());
    }
    let pid = (pid != 0).then_some(pid);
    let state = oci_state(&spec, id, bundle, Status::Stopped, pid);
    run_spec_hooks(router, HookKind::Poststop, &spec, &state).await
}

/// Runs `hooks` of `kind` in order with `state` on their stdin; `container_namespaces` are the
/// spec's (joined only by the kinds that run in the container namespace). See the module doc
/// for which failures stop the sequence.
pub async fn run_hooks(
    router: &ExitRouter,
    kind: HookKind,
    hooks: &[Hook],
    state: &State,
    container_namespaces: &[Namespace],
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let joins = if kind.in_container_namespaces() {
        container_namespaces
    } else {
        &[]
    };
    let state_json = serde_json::to_vec(state).map_err(|e| {
        ShimError::io(
            format!("serialise the state for {kind} hooks"),
            io::Error::other(e),
        )
    })?;
    let mut warnings = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        let outcome = run_hook(router, kind, index, hook, &state_json, joins).await;
        match outcome {
            Ok(()) => {}
            Err(error) if kind.failure_is_warning() => {
                tracing::warn!(%error, hook = %hook.path.display(), "{kind} hook failed; continuing");
                warnings.push(error);
            }
            Err(error) => return Err(error),
        }
    }
    ShimError::from_cleanup(warnings)
}

async fn run_hook(
    router: &ExitRouter,
    kind: HookKind,
    index: usize,
    hook: &Hook,
    state_json: &[u8],
    joins: &[Namespace],
) -> Result<()> {
    let field = format!("hooks.{kind}[{index}]");
    let path = &hook.path;
    if !path.is_absolute() {
        return Err(ShimError::invalid(
            format!("{field}.path"),
            path.display().to_string(),
            "a hook path must be absolute",
        ));
    }
    let timeout = match hook.timeout {
        Some(seconds) if seconds <= 0 => {
            return Err(ShimError::invalid(
                format!("{field}.timeout"),
                seconds.to_string(),
                "a hook timeout must be greater than zero",
            ))
        }
        Some(seconds) => Some(Duration::from_secs(seconds as u64)),
        None => None,
    };
    let failure =
        |source: io::Error| ShimError::io(format!("{kind} hook {}", path.display()), source);

    let output = memfd_create("urunc-hook-output", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| failure(io::Error::from(e)))?;
    let mut command = Command::new(path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for entry in &hook.env {
        let (key, value) = entry.split_once('=').ok_or_else(|| {
            ShimError::invalid(format!("{field}.env"), entry, "expected KEY=VALUE")
        })?;
        command.env(key, value);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(output.try_clone().map_err(failure)?))
        .stderr(Stdio::from(output.try_clone().map_err(failure)?))
        // Its own group: an expired timeout kills what the hook started, too.
        .process_group(0);
    if !joins.is_empty() {
        let namespaces = NamespacePlan::joins_only(joins)?;
        // SAFETY: setns on descriptors opened before the fork; nothing else runs in the child.
        unsafe {
            command.pre_exec(move || namespaces.enter());
        }
    }

    let (mut child, mut exit) = router.spawn(&mut command).map_err(failure)?;
    let pid = child.id() as i32;
    let mut group = HookGroup { pid, running: true };
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| failure(io::Error::other("no stdin pipe")))?;
    let writer = tokio::spawn(write_state(OwnedFd::from(stdin), state_json.to_vec()));

    let exited = match timeout {
        Some(limit) => match tokio::time::timeout(limit, &mut exit).await {
            Ok(exited) => exited,
            Err(_) => {
                writer.abort();
                let kill = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                // The reaper still collects it; waiting keeps the pid from being reused under us.
                let _ = exit.await;
                group.running = false;
                let mut reason = format!("timed out after {}s; killed", limit.as_secs());
                if let Err(error) = kill {
                    reason.push_str(&format!(" (killpg {pid} failed: {error})"));
                }
                return Err(failure(io::Error::new(io::ErrorKind::TimedOut, reason)));
            }
        },
        None => exit.await,
    };
    group.running = false;
    let code: ExitCode = exited.map_err(|_| {
        failure(io::Error::other(
            "the reaper stopped before the hook's exit was seen",
        ))
    })?;
    // The hook is gone: what it did not read no longer matters, but a failed write does.
    if !writer.is_finished() {
        writer.abort();
    }
    match writer.await {
        Ok(Err(error)) if error.kind() != io::ErrorKind::BrokenPipe => {
            return Err(failure(io::Error::new(
                error.kind(),
                format!("writing the state to its stdin: {error}"),
            )))
        }
        _ => {}
    }
    if code != 0 {
        return Err(failure(io::Error::other(format!(
            "exit status {code}; output: {:?}",
            output_tail(&File::from(output))
        ))));
    }
    Ok(())
}

/// A running hook's process group: killed when the run is dropped before the hook's exit was
/// seen (its Create was cancelled), so neither the hook nor what it started outlives it. The
/// reaper collects it.
struct HookGroup {
    pid: i32,
    running: bool,
}

impl Drop for HookGroup {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        match killpg(Pid::from_raw(self.pid), Signal::SIGKILL) {
            Ok(()) => tracing::info!(
                pid = self.pid,
                "hook abandoned (its request was cancelled): killed"
            ),
            Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => {
                tracing::error!(pid = self.pid, %error, "killing an abandoned hook failed")
            }
        }
    }
}

async fn write_state(stdin: OwnedFd, json: Vec<u8>) -> io::Result<()> {
    let mut pipe = tokio::net::unix::pipe::Sender::from_owned_fd(stdin)?;
    pipe.write_all(&json).await?;
    // Dropping the sender closes the pipe: the hook sees EOF after the JSON.
    Ok(())
}

/// The last bytes the hook wrote, or a note saying why they cannot be read.
fn output_tail(output: &File) -> String {
    let size = match output.metadata() {
        Ok(metadata) => metadata.len(),
        Err(error) => return format!("<cannot read the hook's output: {error}>"),
    };
    let start = size.saturating_sub(OUTPUT_TAIL_BYTES);
    let mut tail = vec![0; (size - start) as usize];
    match output.read_exact_at(&mut tail, start) {
        Ok(()) => String::from_utf8_lossy(&tail).trim_end().to_string(),
        Err(error) => format!("<cannot read the hook's output: {error}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::test_reaper;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    fn sh_hook(script: &str, env: &[&str], timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".to_string(), "-c".to_string(), script.to_string()],
            env: env.iter().map(|e| e.to_string()).collect(),
            timeout,
        }
    }

    fn state() -> State {
        State {
            oci_version: "1.1.0".into(),
            id: "hooked".into(),
            status: Status::Running,
            pid: Some(4242),
            bundle: PathBuf::from("/run/bundle/hooked"),
            annotations: HashMap::from([(
                "com.urunc.unikernel.hypervisor".to_string(),
                "qemu".to_string(),
            )]),
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    #[tokio::test]
    async fn hooks_run_in_order_with_the_state_on_stdin_and_only_their_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let stdin_copy = dir.path().join("stdin.json");
        let env_copy = dir.path().join("env");
        let hooks = [
            sh_hook(&format!("echo first >> {}", log.display()), &[], None),
            sh_hook(
                &format!(
                    "cat > {}; env > {}; echo second >> {}",
                    stdin_copy.display(),
                    env_copy.display(),
                    log.display()
                ),
                &["GREETING=hello world", "EMPTY="],
                Some(5),
            ),
            sh_hook(&format!("echo third >> {}", log.display()), &[], None),
        ];
        run_hooks(
            &test_reaper::shared(),
            HookKind::CreateRuntime,
            &hooks,
            &state(),
            &[],
        )
        .await
        .expect("hooks succeed");

        assert_eq!(read(&log), "first\nsecond\nthird\n");
        let seen: serde_json::Value =
            serde_json::from_str(&read(&stdin_copy)).expect("stdin is JSON");
        assert_eq!(
            seen,
            serde_json::json!({
                "ociVersion": "1.1.0",
                "id": "hooked",
                "status": "running",
                "pid": 4242,
                "bundle": "/run/bundle/hooked",
                "annotations": {"com.urunc.unikernel.hypervisor": "qemu"},
            })
        );
        let env = read(&env_copy);
        assert!(env.lines().any(|l| l == "GREETING=hello world"), "{env}");
        assert!(env.lines().any(|l| l == "EMPTY="), "{env}");
        assert!(
            !env.lines().any(|l| l.starts_with("HOME=")),
            "the shim's environment leaked into the hook: {env}"
        );
    }

    #[tokio::test]
    async fn args_include_argv0() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("argv");
        let hook = Hook {
            path: "/bin/sh".into(),
            args: [
                "sh",
                "-c",
                &format!("echo \"$0 $1\" > {}", out.display()),
                "hook-name",
                "first-arg",
            ]
            .map(String::from)
            .to_vec(),
            ..Hook::default()
        };
        run_hooks(
            &test_reaper::shared(),
            HookKind::Prestart,
            &[hook],
            &state(),
            &[],
        )
        .await
        .expect("hook succeeds");
        assert_eq!(read(&out), "hook-name first-arg\n");
    }

    /// Runs hooks whose path is a script just written; a concurrent test's fork may still hold
    /// the script open for writing for an instant (ETXTBSY), which is retried here only.
    async fn run_written_scripts(kind: HookKind, hooks: &[Hook]) -> Result<()> {
        for _ in 0..20 {
            match run_hooks(&test_reaper::shared(), kind, hooks, &state(), &[]).await {
                Err(ShimError::Io { source, .. })
                    if source.kind() == io::ErrorKind::ExecutableFileBusy =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                outcome => return outcome,
            }
        }
        panic!("scripts stayed busy");
    }

    fn script(dir: &Path, name: &str, body: &str) -> Hook {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Hook {
            path,
            ..Hook::default()
        }
    }

    #[tokio::test]
    async fn a_failing_hook_names_its_path_and_exit_status_and_stops_the_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        let failing = script(dir.path(), "failing-hook", "echo 'no GPU here' >&2; exit 3");
        let after = script(dir.path(), "after", &format!("touch {}", marker.display()));
        let error = run_written_scripts(HookKind::CreateContainer, &[failing, after])
            .await
            .expect_err("the hook fails");
        let message = error.to_string();
        let path = dir.path().join("failing-hook");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("exit status 3"), "{message}");
        assert!(message.contains("no GPU here"), "{message}");
        assert!(!marker.exists(), "a hook after the failure ran");
    }

    #[tokio::test]
    async fn poststop_failures_do_not_stop_the_remaining_hooks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        let hooks = [
            sh_hook("exit 7", &[], None),
            sh_hook(&format!("touch {}", marker.display()), &[], None),
            sh_hook("exit 8", &[], None),
        ];
        let error = run_hooks(
            &test_reaper::shared(),
            HookKind::Poststop,
            &hooks,
            &state(),
            &[],
        )
        .await
        .expect_err("two hooks failed");
        let message = error.to_string();
        assert!(
            marker.exists(),
            "the hook after a poststop failure did not run"
        );
        assert!(
            message.contains("exit status 7") && message.contains("exit status 8"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let hook = sh_hook(
            &format!("sleep 60 & echo $$ $! > {}; wait", pids.display()),
            &[],
            Some(1),
        );
        let started = Instant::now();
        let error = run_hooks(
            &test_reaper::shared(),
            HookKind::StartContainer,
            &[hook],
            &state(),
            &[],
        )
        .await
        .expect_err("the hook times out");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        let message = error.to_string();
        assert!(
            message.contains("/bin/sh") && message.contains("timed out after 1s"),
            "{message}"
        );
        let recorded = read(&pids);
        for pid in recorded.split_whitespace() {
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            let deadline = Instant::now() + Duration::from_secs(5);
            // The orphaned `sleep` is reaped by init shortly after its SIGKILL.
            while proc_dir.exists() && !is_zombie(&proc_dir) {
                assert!(Instant::now() < deadline, "pid {pid} survived the timeout");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    #[tokio::test]
    async fn a_hook_whose_run_is_dropped_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let written = dir.path().join("pids.done");
        // No timeout: only dropping the run (a cancelled Create) ends it.
        let hook = sh_hook(
            &format!(
                "sleep 600 & echo $$ $! > {}; mv {} {}; wait",
                written.display(),
                written.display(),
                pids.display()
            ),
            &[],
            None,
        );
        let run = tokio::spawn(async move {
            run_hooks(
                &test_reaper::shared(),
                HookKind::CreateRuntime,
                &[hook],
                &state(),
                &[],
            )
            .await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.exists() {
            assert!(Instant::now() < deadline, "the hook never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        run.abort();
        assert!(run.await.expect_err("aborted").is_cancelled());
        let recorded = read(&pids);
        let mut survivors = Vec::new();
        for pid in recorded.split_whitespace() {
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while proc_dir.exists() && !is_zombie(&proc_dir) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if proc_dir.exists() && !is_zombie(&proc_dir) {
                survivors.push(pid.to_string());
            }
        }
        if !survivors.is_empty() {
            // Removed even when the test fails: the hook's shell leads its process group.
            let group = recorded
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok());
            if let Some(group) = group.filter(|&g: &i32| g > 1) {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
        }
        assert!(
            survivors.is_empty(),
            "{survivors:?} outlived their dropped run"
        );
    }

    fn is_zombie(proc_dir: &Path) -> bool {
        std::fs::read_to_string(proc_dir.join("stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn bad_hook_fields_are_refused_naming_the_field() {
        let relative = Hook {
            path: "hook.sh".into(),
            ..Hook::default()
        };
        let error = run_hooks(
            &test_reaper::shared(),
            HookKind::Prestart,
            &[relative],
            &state(),
            &[],
        )
        .await
        .expect_err("relative path");
        assert!(
            error.to_string().contains("hooks.prestart[0].path"),
            "{error}"
        );

        let zero = sh_hook("true", &[], Some(0));
        let error = run_hooks(
            &test_reaper::shared(),
            HookKind::Poststart,
            &[zero],
            &state(),
            &[],
        )
        .await
        .expect_err("zero timeout");
        assert!(
            error.to_string().contains("hooks.poststart[0].timeout"),
            "{error}"
        );

        let bad_env = sh_hook("true", &["NOEQUALS"], None);
        let error = run_hooks(
            &test_reaper::shared(),
            HookKind::Prestart,
            &[bad_env],
            &state(),
            &[],
        )
        .await
        .expect_err("env without =");
        assert!(
            error.to_string().contains("hooks.prestart[0].env")
                && error.to_string().contains("NOEQUALS"),
            "{error}"
        );
    }

    #[test]
    fn kinds_select_their_list_from_the_spec() {
        let hooks: Hooks = serde_json::from_value(serde_json::json!({
            "createRuntime": [{"path": "/bin/true"}],
            "poststop": [{"path": "/bin/false"}, {"path": "/bin/true"}],
        }))
        .expect("hooks");
        assert_eq!(HookKind::CreateRuntime.select(&hooks).len(), 1);
        assert_eq!(HookKind::Poststop.select(&hooks).len(), 2);
        assert!(HookKind::Prestart.select(&hooks).is_empty());
    }
}
