//! A minimal QMP client: enough to ask a qemu guest to power off (`system_powerdown`, the ACPI
//! power button). The Kill path of a qemu unikernel uses it for SIGTERM and SIGINT.
//!
//! QMP speaks newline-delimited JSON over a Unix socket: qemu sends a greeting, the client
//! leaves negotiation mode with `qmp_capabilities`, then every command gets exactly one
//! `{"return": ...}` or `{"error": {"class", "desc"}}`; asynchronous `{"event": ...}` lines may
//! arrive in between and are skipped. Every step runs under the caller's timeout, because a
//! wedged qemu must not hold the shim's Kill path forever.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::error::{Result, ShimError};

/// The Kill path's graceful stop in one call: connect, negotiate, press the power button, hang up.
pub async fn request_powerdown(socket: &Path, timeout: Duration) -> Result<()> {
    QmpClient::connect(socket, timeout)
        .await?
        .system_powerdown()
        .await
}

/// A negotiated QMP session (capabilities already exchanged).
pub struct QmpClient {
    socket: PathBuf,
    timeout: Duration,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl QmpClient {
    /// Connects, reads the greeting and negotiates capabilities; `timeout` bounds each step and
    /// every later command.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Self> {
        let stream = within(socket, "connect", timeout, UnixStream::connect(socket)).await?;
        let (read, writer) = stream.into_split();
        let mut client = QmpClient {
            socket: socket.to_path_buf(),
            timeout,
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.read_message("greeting").await?;
        if greeting.get("QMP").is_none() {
            return Err(
                client.protocol_error("greeting", format!("not a QMP greeting: {greeting}"))
            );
        }
        client.execute("qmp_capabilities").await?;
        Ok(client)
    }

    /// Presses the guest's ACPI power button. qemu accepts it at once; whether the guest powers
    /// off is up to the guest, so the caller still needs a grace period and a SIGKILL.
    pub async fn system_powerdown(&mut self) -> Result<()> {
        self.execute("system_powerdown").await.map(drop)
    }

    /// Makes qemu exit (the tests end their qemu this way). qemu may close the socket before its reply arrives; that is the
    /// outcome asked for, so an end of stream counts as success here.
    #[cfg(test)]
    pub async fn quit(&mut self) -> Result<()> {
        match self.execute("quit").await {
            Ok(_) => Ok(()),
            Err(ShimError::Io { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Sends `{"execute": command}` and returns its `return` value.
    async fn execute(&mut self, command: &str) -> Result<Value> {
        let mut line = serde_json::json!({ "execute": command }).to_string();
        line.push('\n');
        within(
            &self.socket,
            command,
            self.timeout,
            self.writer.write_all(line.as_bytes()),
        )
        .await?;
        loop {
            let mut reply = self.read_message(command).await?;
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(value) = reply.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = reply.get("error") {
                let class = error.get("class").and_then(Value::as_str).unwrap_or("?");
                let desc = error.get("desc").and_then(Value::as_str).unwrap_or("?");
                return Err(self.protocol_error(command, format!("{class}: {desc}")));
            }
            return Err(self.protocol_error(command, format!("unexpected reply {reply}")));
        }
    }

    async fn read_message(&mut self, step: &str) -> Result<Value> {
        let mut line = String::new();
        let read = within(
            &self.socket,
            step,
            self.timeout,
            self.reader.read_line(&mut line),
        )
        .await?;
        if read == 0 {
            return Err(qmp_io(
                &self.socket,
                step,
                io::Error::new(io::ErrorKind::UnexpectedEof, "qemu closed the QMP socket"),
            ));
        }
        serde_json::from_str(&line).map_err(|e| {
            self.protocol_error(
                step,
                format!("reply {:?} is not JSON: {e}", line.trim_end()),
            )
        })
    }

    fn protocol_error(&self, step: &str, reason: String) -> ShimError {
        qmp_io(&self.socket, step, io::Error::other(reason))
    }
}

/// Runs one I/O step under the timeout; both failures name the socket and the step.
async fn within<T>(
    socket: &Path,
    step: &str,
    timeout: Duration,
    operation: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(outcome) => outcome.map_err(|e| qmp_io(socket, step, e)),
        Err(_) => Err(qmp_io(
            socket,
            step,
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            ),
        )),
    }
}

fn qmp_io(socket: &Path, step: &str, source: io::Error) -> ShimError {
    ShimError::io(format!("QMP {} {step}", socket.display()), source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::test_reaper;
    use crate::reaper::ExitCode;
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::process::{Command, Stdio};
    use std::time::Instant;
    use tokio::sync::oneshot;

    const QEMU: &str = "qemu-system-x86_64";
    const STEP: Duration = Duration::from_secs(10);

    /// A paused, device-less microvm with a QMP socket, spawned through the tests' shared
    /// reaper (a second `waitpid(-1)` would steal its status); killed on drop if still alive.
    struct Qemu {
        pid: i32,
        exit: Option<oneshot::Receiver<ExitCode>>,
        _dir: tempfile::TempDir,
        socket: PathBuf,
    }

    impl Qemu {
        fn start() -> Option<Qemu> {
            if test_reaper::find_program(QEMU).is_none() {
                skipped!("SKIPPED: {QEMU} is not installed (apt-get install qemu-system-x86)");
                return None;
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let socket = dir.path().join("qmp.sock");
            let mut command = Command::new(QEMU);
            command
                .args([
                    "-M",
                    "microvm",
                    "-accel",
                    "tcg",
                    "-nodefaults",
                    "-nographic",
                    "-S",
                ])
                .arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", socket.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let (child, exit) = test_reaper::shared()
                .spawn(&mut command)
                .expect("spawn qemu");
            let qemu = Qemu {
                pid: child.id() as i32,
                exit: Some(exit),
                _dir: dir,
                socket,
            };
            let deadline = Instant::now() + STEP;
            while !qemu.socket.exists() {
                assert!(Instant::now() < deadline, "qemu made no QMP socket");
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(qemu)
        }

        async fn exit_code(&mut self) -> ExitCode {
            let exit = self.exit.take().expect("exit awaited once");
            tokio::time::timeout(STEP, exit)
                .await
                .expect("qemu exits in time")
                .expect("reaper delivers the exit")
        }
    }

    impl Drop for Qemu {
        fn drop(&mut self) {
            let still_running = self
                .exit
                .as_mut()
                .is_some_and(|exit| exit.try_recv().is_err());
            if still_running {
                if let Err(error) = kill(Pid::from_raw(self.pid), Signal::SIGKILL) {
                    eprintln!("cannot kill qemu {}: {error}", self.pid);
                }
            }
        }
    }

    #[tokio::test]
    async fn powerdown_is_accepted_and_quit_ends_qemu() {
        let Some(mut qemu) = Qemu::start() else {
            return;
        };
        request_powerdown(&qemu.socket, STEP)
            .await
            .expect("system_powerdown on a first connection");
        let mut client = QmpClient::connect(&qemu.socket, STEP)
            .await
            .expect("a second connection once the first hung up");
        client.system_powerdown().await.expect("system_powerdown");
        client.quit().await.expect("quit");
        assert_eq!(qemu.exit_code().await, 0, "qemu's exit after quit");
    }

    #[tokio::test]
    async fn a_qmp_error_names_the_socket_and_the_class() {
        let Some(qemu) = Qemu::start() else {
            return;
        };
        let mut client = QmpClient::connect(&qemu.socket, STEP)
            .await
            .expect("connect");
        let error = client
            .execute("no-such-command")
            .await
            .expect_err("unknown command");
        let message = error.to_string();
        assert!(
            message.contains(&qemu.socket.display().to_string())
                && message.contains("CommandNotFound"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("absent.sock");
        let error = QmpClient::connect(&socket, STEP)
            .await
            .err()
            .expect("no socket");
        assert!(
            error.to_string().contains(&socket.display().to_string()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("silent.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let error = QmpClient::connect(&socket, Duration::from_millis(200))
            .await
            .err()
            .expect("no greeting");
        match error {
            ShimError::Io { source, .. } => assert_eq!(source.kind(), io::ErrorKind::TimedOut),
            other => panic!("not a timeout: {other}"),
        }
    }
}
