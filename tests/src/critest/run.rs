//! One critest run against a CRI node: a runtime handler, a focus and a
//! skip, a JSON report read back as [`SpecResult`]s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::report::{read_report, SpecResult};
use crate::command;
use crate::error::{HarnessError, Result};
use crate::peers::Peer;

/// The peer that ships critest.
const CRI_TOOLS_PEER: &str = "cri-tools";

/// critest's binary (built by `.ci/install-go-peers`).
pub fn critest_binary() -> Result<PathBuf> {
    Peer::pinned(CRI_TOOLS_PEER)?.program("critest")
}

/// crictl's binary (built with critest).
pub fn crictl_binary() -> Result<PathBuf> {
    Peer::pinned(CRI_TOOLS_PEER)?.program("crictl")
}

/// What to run.
#[derive(Debug, Clone)]
pub struct CritestRun<'a> {
    /// containerd's gRPC socket (runtime and image endpoint).
    pub socket: &'a Path,
    /// `-runtime-handler`.
    pub handler: &'a str,
    /// `-ginkgo.focus` (empty: every spec).
    pub focus: &'a str,
    /// `-ginkgo.skip` (empty: none).
    pub skip: &'a str,
    /// `-test-images-file`, when the default images are replaced.
    pub images_file: Option<&'a Path>,
    /// Where the report and critest's output go (`<handler>.json`, `<handler>.log`).
    pub out_dir: &'a Path,
    /// critest is killed after this long.
    pub limit: Duration,
}

/// The results of one run.
#[derive(Debug, Clone)]
pub struct CritestOutcome {
    pub specs: Vec<SpecResult>,
    /// critest's output (stdout and stderr).
    pub log: PathBuf,
    pub took: Duration,
}

/// Runs critest as `run` says and reads its report. critest exits non-zero
/// when a spec fails; that is a result, not an error. No report at all (it
/// could not start, or was killed) is an error carrying its output's tail.
pub fn run_critest(critest: &Path, run: &CritestRun) -> Result<CritestOutcome> {
    let report = run.out_dir.join(format!("{}.json", run.handler));
    let log = run.out_dir.join(format!("{}.log", run.handler));
    let endpoint = format!("unix://{}", run.socket.display());
    let mut critest_command = Command::new(critest);
    critest_command
        .arg(format!("-runtime-endpoint={endpoint}"))
        .arg(format!("-image-endpoint={endpoint}"))
        .arg(format!("-runtime-handler={}", run.handler))
        .arg(format!("-ginkgo.json-report={}", report.display()))
        .arg("-ginkgo.no-color")
        // critest reads /etc/crictl.yaml unless given a config; the flags
        // above are the whole configuration.
        .arg(format!(
            "-config={}",
            run.out_dir.join("crictl.yaml").display()
        ))
        .current_dir(run.out_dir);
    if !run.focus.is_empty() {
        critest_command.arg(format!("-ginkgo.focus={}", run.focus));
    }
    if !run.skip.is_empty() {
        critest_command.arg(format!("-ginkgo.skip={}", run.skip));
    }
    if let Some(images) = run.images_file {
        critest_command.arg(format!("-test-images-file={}", images.display()));
    }
    let config = run.out_dir.join("crictl.yaml");
    std::fs::write(
        &config,
        format!("runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\n"),
    )
    .map_err(HarnessError::io("write", &config))?;
    let started = Instant::now();
    let status = run_logged(&mut critest_command, &log, run.limit)?;
    let took = started.elapsed();
    // A run cut short leaves no report, or an empty one.
    let specs = read_report(&report).map_err(|error| HarnessError::CommandFailed {
        command: command::describe(&critest_command),
        status: format!("{status}; its report: {error}"),
        stderr: command::file_tail(&log, 40),
    })?;
    Ok(CritestOutcome { specs, log, took })
}

/// Runs `command` with its stdout and stderr going to `log` (so a run can
/// be followed while it lasts); kills it after `limit`. Returns how it ended.
fn run_logged(command: &mut Command, log: &Path, limit: Duration) -> Result<String> {
    let out = std::fs::File::create(log).map_err(HarnessError::io("create", log))?;
    let err = out
        .try_clone()
        .map_err(HarnessError::io("duplicate", log))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: command::describe(command),
            source,
        })?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(HarnessError::io("wait for", command::describe(command)))?
        {
            return Ok(status.to_string());
        }
        if Instant::now() >= deadline {
            child
                .kill()
                .map_err(HarnessError::io("kill", command::describe(command)))?;
            let status = child
                .wait()
                .map_err(HarnessError::io("wait for", command::describe(command)))?;
            return Ok(format!("killed after {} s ({status})", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
