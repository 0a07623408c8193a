//! Runs a short helper program (the KVM probe's qemu, a VMM's `--version`) through the shim's
//! reaper and returns its exit code and what it printed.
//!
//! The serving shim reaps every child with `waitpid(-1)`, so `Command::output` would race the
//! reaper for the status: the child is spawned through the [`ExitRouter`] instead, its stdout
//! and stderr go to one memfd (no pipe to drain while waiting), and a child that outlives
//! `limit` is killed.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::reaper::{ExitCode, ExitRouter};

/// Runs `command` with `stdin` written to its standard input; `Err` says why it could not be
/// run or did not end within `limit`.
pub async fn run(
    router: &ExitRouter,
    command: &mut Command,
    stdin: &[u8],
    limit: Duration,
) -> Result<(ExitCode, String), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = memfd_create("urunc-captured", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd for {program}'s output: {e}"))?;
    let mut output = File::from(output);
    let dup = |f: &File| {
        f.try_clone()
            .map_err(|e| format!("dup {program}'s output: {e}"))
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(dup(&output)?))
        .stderr(Stdio::from(dup(&output)?));
    let (mut child, exit) = router
        .spawn(command)
        .map_err(|e| format!("run {program}: {e}"))?;
    if let Some(mut pipe) = child.stdin.take() {
        // A child that already ended closed the pipe: its output says why.
        let _ = pipe.write_all(stdin);
    }
    let pid = child.id() as i32;
    let code = match tokio::time::timeout(limit, exit).await {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => return Err(format!("the reaper stopped before {program} ended")),
        Err(_) => {
            if let Err(error) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
                tracing::warn!(pid, %program, %error, "killing a helper that did not end failed");
            }
            return Err(format!("{program} did not end within {}s", limit.as_secs()));
        }
    };
    let mut text = String::new();
    if let Err(error) = output
        .rewind()
        .and_then(|()| output.read_to_string(&mut text))
    {
        text = format!("(output unreadable: {error})");
    }
    Ok((code, text))
}
