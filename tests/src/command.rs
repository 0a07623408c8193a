//! Running host programs with errors that say what ran and what it printed.

use std::process::{Command, Output};

use crate::error::{HarnessError, Result};

/// How a command is shown in errors: program and arguments, space-separated.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for argument in command.get_args() {
        text.push(' ');
        text.push_str(&argument.to_string_lossy());
    }
    text
}

/// Runs `command` to completion and returns its output, whatever its status.
pub fn output(command: &mut Command) -> Result<Output> {
    command.output().map_err(|source| HarnessError::Spawn {
        program: describe(command),
        source,
    })
}

/// Runs `command` and returns its stdout as text; a non-zero exit is an
/// error that carries its stderr.
pub fn checked(command: &mut Command) -> Result<String> {
    checked_bytes(command).map(|stdout| String::from_utf8_lossy(&stdout).into_owned())
}

/// Like [`checked`], returning stdout's raw bytes.
pub fn checked_bytes(command: &mut Command) -> Result<Vec<u8>> {
    let out = output(command)?;
    if !out.status.success() {
        return Err(HarnessError::CommandFailed {
            command: describe(command),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Runs `command` but kills it if it has not finished within `limit`, so a
/// hung client cannot hang a cleanup path. Output is collected through files
/// the child writes, so a chatty child cannot block on a full pipe.
pub fn output_within(command: &mut Command, limit: std::time::Duration) -> Result<Output> {
    let spool = tempfile::tempdir().map_err(HarnessError::io("create spool dir for", "tmp"))?;
    let stdout_path = spool.path().join("stdout");
    let stderr_path = spool.path().join("stderr");
    let stdout =
        std::fs::File::create(&stdout_path).map_err(HarnessError::io("create", &stdout_path))?;
    let stderr =
        std::fs::File::create(&stderr_path).map_err(HarnessError::io("create", &stderr_path))?;
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: describe(command),
            source,
        })?;
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(HarnessError::io("wait for", describe(command)))?
        {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            child
                .kill()
                .map_err(HarnessError::io("kill timed-out", describe(command)))?;
            child
                .wait()
                .map_err(HarnessError::io("reap timed-out", describe(command)))?;
            return Err(HarnessError::Timeout {
                what: describe(command),
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: std::fs::read(&stdout_path).map_err(HarnessError::io("read", &stdout_path))?,
        stderr: std::fs::read(&stderr_path).map_err(HarnessError::io("read", &stderr_path))?,
    })
}

/// The last `lines` lines of the text file at `path` (a log), for failure
/// messages; says why when it cannot be read.
pub fn file_tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read {path:?}: {error})"),
    }
}
