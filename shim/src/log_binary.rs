//! A logging binary for a container's output (a `binary://` stdio URI: `ctr run --log-uri`,
//! `nerdctl run -d`), run as containerd's shims run one (its pkg/process/io.go): only
//! `CONTAINER_ID` and `CONTAINER_NAMESPACE` in its environment, the read end of the
//! container's stdout pipe as fd 3, of its stderr pipe as fd 4, and as fd 5 the write end of a
//! pipe it closes once it is ready; the container's process starts only after that. It ends by
//! itself when both pipes reach EOF (the process died); the teardown still stops it: SIGTERM so
//! it can flush, SIGKILL after [`TERM_TIMEOUT`] (containerd's 12 s).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use crate::error::{Result, ShimError};
use crate::reaper::{ExitCode, ExitRouter};

/// How long a logging binary may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to flush and exit after SIGTERM.
const TERM_TIMEOUT: Duration = Duration::from_secs(12);
/// The fds it gets: stdout's pipe, stderr's pipe, the ready pipe.
const FIRST_FD: RawFd = 3;

/// A running logging binary.
pub struct LogBinary {
    program: String,
    pid: i32,
    /// Taken by the one [`LogBinary::stop`] that waits for the exit.
    exit: Mutex<Option<oneshot::Receiver<ExitCode>>>,
}

/// The write ends the container's process gets as its stdout and stderr.
pub struct LoggerInputs {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl LogBinary {
    /// Spawns `program args` for container `id` of containerd namespace `namespace` and waits
    /// until it is ready.
    pub async fn start(
        router: &ExitRouter,
        program: &str,
        args: &[String],
        id: &str,
        namespace: &str,
    ) -> Result<(LogBinary, LoggerInputs)> {
        let failure = |what: &str, source: std::io::Error| {
            ShimError::io(format!("logging binary {program}: {what}"), source)
        };
        let pipe = || std::io::pipe().map_err(|e| failure("create a pipe", e));
        let (stdout_reader, stdout_writer) = pipe()?;
        let (stderr_reader, stderr_writer) = pipe()?;
        let (ready_reader, ready_writer) = pipe()?;
        let handed: [RawFd; 3] = [
            stdout_reader.as_raw_fd(),
            stderr_reader.as_raw_fd(),
            ready_writer.as_raw_fd(),
        ];
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("CONTAINER_ID", id)
            .env("CONTAINER_NAMESPACE", namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only fcntl and dup2 on fds this process owns; async-signal-safe.
        unsafe {
            command.pre_exec(move || hand_over(&handed));
        }
        let (child, exit) = router
            .spawn(&mut command)
            .map_err(|e| failure("spawn", e))?;
        // Its copies are its own now: the ready pipe's EOF must come from it alone.
        drop((stdout_reader, stderr_reader, ready_writer));
        let logger = LogBinary {
            program: program.to_string(),
            pid: child.id() as i32,
            exit: Mutex::new(Some(exit)),
        };
        if let Err(error) = wait_ready(ready_reader).await {
            let stopped = logger.stop().await;
            let error = failure("waiting until it is ready", error);
            return Err(crate::container::prepared::with_undo(error, stopped));
        }
        tracing::info!(%id, program, pid = logger.pid, "logging binary ready");
        Ok((
            logger,
            LoggerInputs {
                stdout: OwnedFd::from(stdout_writer),
                stderr: OwnedFd::from(stderr_writer),
            },
        ))
    }

    /// Stops it if it still runs (SIGTERM, then SIGKILL after [`TERM_TIMEOUT`]) and waits for
    /// its exit. Idempotent.
    pub async fn stop(&self) -> Result<()> {
        let exit = self.exit.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut exit) = exit else {
            return Ok(());
        };
        if exit.try_recv().is_ok() {
            return Ok(()); // it ended with its input, as it should
        }
        self.signal(Signal::SIGTERM)?;
        if tokio::time::timeout(TERM_TIMEOUT, &mut exit).await.is_ok() {
            return Ok(());
        }
        tracing::warn!(program = %self.program, pid = self.pid, "the logging binary ignored SIGTERM for {TERM_TIMEOUT:?}: killing it");
        self.signal(Signal::SIGKILL)?;
        let _ = exit.await;
        Ok(())
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        match kill(Pid::from_raw(self.pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(error) => Err(ShimError::sys(
                format!(
                    "{signal} the logging binary {} (pid {})",
                    self.program, self.pid
                ),
                error,
            )),
        }
    }
}

/// The ready pipe: a byte or EOF (the binary closed it, or died) ends the wait.
async fn wait_ready(ready: std::io::PipeReader) -> std::io::Result<()> {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(ready))?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(READY_TIMEOUT, pipe.read(&mut byte)).await {
        Ok(read) => read.map(drop),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("not ready after {READY_TIMEOUT:?}"),
        )),
    }
}

/// In the forked child: `fds` become 3, 4, 5 (inheritable). Each is first copied above the
/// targets, so a source that already is 3, 4 or 5 is not overwritten before it is moved.
fn hand_over(fds: &[RawFd; 3]) -> std::io::Result<()> {
    let mut high = [0; 3];
    for (copy, fd) in high.iter_mut().zip(fds) {
        // SAFETY: fcntl on an fd the parent opened; this is the child process.
        *copy = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, FIRST_FD + 3) };
        if *copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (target, copy) in (FIRST_FD..).zip(high) {
        // SAFETY: as above; dup2 leaves the target without FD_CLOEXEC.
        if unsafe { libc::dup2(copy, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::test_reaper;
    use std::io::Write;

    #[tokio::test]
    async fn the_binary_gets_the_pipes_on_3_and_4_and_only_the_two_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let env = dir.path().join("env");
        let script = format!(
            "env > {env}; exec 5>&-; cat <&3 > {out}; cat <&4 >> {out}",
            env = env.display(),
            out = out.display()
        );
        let (logger, inputs) = LogBinary::start(
            &test_reaper::shared(),
            "/bin/sh",
            &["-c".to_string(), script],
            "c1",
            "ns1",
        )
        .await
        .expect("ready");
        // The container's process: it writes and exits (its ends close).
        std::fs::File::from(inputs.stdout)
            .write_all(b"to stdout\n")
            .expect("write stdout");
        std::fs::File::from(inputs.stderr)
            .write_all(b"to stderr\n")
            .expect("write stderr");
        let exit = logger.exit.lock().unwrap().take().expect("not stopped");
        tokio::time::timeout(Duration::from_secs(10), exit)
            .await
            .expect("it ends at EOF")
            .expect("exit seen");
        assert_eq!(
            std::fs::read_to_string(&out).expect("out"),
            "to stdout\nto stderr\n"
        );
        let env = std::fs::read_to_string(&env).expect("env");
        let mut names: Vec<&str> = env
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|name| !["PWD", "SHLVL", "_"].contains(name)) // the shell's own
            .collect();
        names.sort();
        assert_eq!(names, ["CONTAINER_ID", "CONTAINER_NAMESPACE"], "{env}");
        assert!(env.contains("CONTAINER_ID=c1\n") && env.contains("CONTAINER_NAMESPACE=ns1\n"));
        logger.stop().await.expect("stopping an ended binary");
    }

    #[tokio::test]
    async fn a_binary_that_keeps_running_is_stopped_and_one_that_dies_unready_fails_start() {
        let (logger, _inputs) = LogBinary::start(
            &test_reaper::shared(),
            "/bin/sh",
            &["-c".to_string(), "exec 5>&-; exec sleep 60".to_string()],
            "c2",
            "ns1",
        )
        .await
        .expect("ready");
        let pid = logger.pid;
        logger.stop().await.expect("stop");
        assert!(
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| !stat.contains("sleep")),
            "the logging binary still runs"
        );

        let error = LogBinary::start(
            &test_reaper::shared(),
            "/nonexistent/logger",
            &[],
            "c3",
            "ns1",
        )
        .await
        .err()
        .expect("no such program");
        assert!(error.to_string().contains("/nonexistent/logger"), "{error}");
    }
}
