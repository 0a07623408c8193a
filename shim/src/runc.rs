//! The `runc` CLI, for containers that carry no urunc configuration.
//!
//! Every runc invocation is spawned through the shim's [`ExitRouter`], so the single reaper
//! collects its status; the shim never calls `wait` on it. runc keeps its state where
//! containerd's own runc shim does (`/run/containerd/runc/<namespace>`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Result, ShimError};
use crate::reaper::ExitRouter;
use crate::stdio::ProcessStdio;

pub const RUNC_BINARY: &str = "runc";
const RUNC_ROOT: &str = "/run/containerd/runc";

/// What a container process gets as its stdio from runc.
pub enum RuncIo {
    /// The FIFOs themselves, passed through runc.
    Fifos(ProcessStdio),
    /// A pty runc creates and sends to this console socket.
    Terminal(PathBuf),
}

impl RuncIo {
    /// runc's own stdio and the console socket argument.
    fn split(self) -> Result<(ProcessStdio, Option<String>)> {
        match self {
            RuncIo::Fifos(stdio) => Ok((stdio, None)),
            RuncIo::Terminal(socket) => {
                Ok((ProcessStdio::null()?, Some(socket.display().to_string())))
            }
        }
    }
}

#[derive(Clone)]
pub struct Runc {
    root: PathBuf,
    /// runc's JSON log, where it writes why a command failed (the container's bundle).
    log: PathBuf,
    router: ExitRouter,
}

/// runc's root for containerd namespace `namespace`.
pub fn root(namespace: &str) -> PathBuf {
    Path::new(RUNC_ROOT).join(namespace)
}

/// Whether runc under `root` has container `id`: its state directory exists. Decided by the
/// filesystem, never by the wording of runc's errors.
pub fn has_container(root: &Path, id: &str) -> bool {
    !id.is_empty() && !id.contains('/') && root.join(id).join("state.json").is_file()
}

impl Runc {
    pub fn new(namespace: &str, bundle: &Path, router: ExitRouter) -> Self {
        Runc {
            root: root(namespace),
            log: bundle.join("log.json"),
            router,
        }
    }

    pub fn has_container(&self, id: &str) -> bool {
        has_container(&self.root, id)
    }

    /// `runc create`: the container's init gets `io` and waits for `start`.
    pub async fn create(&self, id: &str, bundle: &Path, pid_file: &Path, io: RuncIo) -> Result<()> {
        let bundle = bundle.display().to_string();
        let pid_file = pid_file.display().to_string();
        self.run_with_io(
            &["create", "--bundle", &bundle, "--pid-file", &pid_file],
            id,
            io,
        )
        .await
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        self.run(&["start", id], None).await.map(drop)
    }

    /// `runc exec --detach`: the process described by `process_json` (an OCI process).
    pub async fn exec(
        &self,
        id: &str,
        process_json: &Path,
        pid_file: &Path,
        io: RuncIo,
    ) -> Result<()> {
        let process = process_json.display().to_string();
        let pid_file = pid_file.display().to_string();
        let args = [
            "exec",
            "--detach",
            "--process",
            &process,
            "--pid-file",
            &pid_file,
        ];
        self.run_with_io(&args, id, io).await
    }

    /// Runs `args.. [--console-socket S] id` with the process's stdio.
    async fn run_with_io(&self, args: &[&str], id: &str, io: RuncIo) -> Result<()> {
        let (stdio, console) = io.split()?;
        let mut args = args.to_vec();
        if let Some(console) = &console {
            args.extend(["--console-socket", console.as_str()]);
        }
        args.push(id);
        self.run(&args, Some(stdio)).await.map(drop)
    }

    pub async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let signal = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal.as_str()]);
        self.run(&args, None).await.map(drop)
    }

    pub async fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.run(&args, None).await.map(drop)
    }

    /// `runc update --resources <file>`: `resources` is an OCI LinuxResources JSON document.
    pub async fn update(&self, id: &str, resources: &Path) -> Result<()> {
        let resources = resources.display().to_string();
        self.run(&["update", "--resources", &resources, id], None)
            .await
            .map(drop)
    }

    pub async fn pause(&self, id: &str) -> Result<()> {
        self.run(&["pause", id], None).await.map(drop)
    }

    pub async fn resume(&self, id: &str) -> Result<()> {
        self.run(&["resume", id], None).await.map(drop)
    }

    pub async fn ps(&self, id: &str) -> Result<Vec<u32>> {
        let stdout = self.run(&["ps", "--format", "json", id], None).await?;
        serde_json::from_slice(&stdout).map_err(|source| ShimError::Json {
            path: PathBuf::from(format!("runc ps {id}")),
            source,
        })
    }

    /// Runs runc with `args`; returns its stdout. `stdio`, when given, becomes runc's (and so
    /// the container process's) stdio, and runc's own errors go to its `--log` file instead.
    async fn run(&self, args: &[&str], stdio: Option<ProcessStdio>) -> Result<Vec<u8>> {
        let mut command = Command::new(RUNC_BINARY);
        command.arg("--root").arg(&self.root);
        command
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        command.args(args);
        let captured = stdio.is_none();
        match stdio {
            Some(stdio) => {
                command
                    .stdin(Stdio::from(stdio.stdin))
                    .stdout(Stdio::from(stdio.stdout))
                    .stderr(Stdio::from(stdio.stderr));
            }
            None => {
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
        }
        std::fs::create_dir_all(&self.root)
            .map_err(|e| ShimError::io(format!("create runc root {}", self.root.display()), e))?;
        let described = args.join(" ");
        let (mut child, exit) = self
            .router
            .spawn(&mut command)
            .map_err(|e| ShimError::io(format!("spawn runc {described}"), e))?;
        let (stdout, stderr) = if captured {
            let mut out = child.stdout.take();
            let mut err = child.stderr.take();
            // Both pipes are drained at once: runc blocks on a full stderr pipe while we would
            // still be waiting for stdout's EOF.
            let read = tokio::task::spawn_blocking(move || {
                std::thread::scope(|scope| {
                    let stderr = scope.spawn(|| drain(err.as_mut()));
                    let stdout = drain(out.as_mut());
                    let stderr = stderr
                        .join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("stderr reader panicked")));
                    Ok::<_, std::io::Error>((stdout?, stderr?))
                })
            })
            .await
            .map_err(|e| {
                ShimError::io(
                    format!("read runc {described} output"),
                    std::io::Error::other(e),
                )
            })?;
            read.map_err(|e| ShimError::io(format!("read runc {described} output"), e))?
        } else {
            (Vec::new(), Vec::new())
        };
        let status = exit.await.map_err(|_| ShimError::Runc {
            args: described.clone(),
            status: -1,
            stderr: "the reaper stopped before runc exited".to_string(),
        })?;
        if status != 0 {
            let mut message = String::from_utf8_lossy(&stderr).trim().to_string();
            if let Some(logged) = last_error(&self.log) {
                message = if message.is_empty() {
                    logged
                } else {
                    format!("{message}; {logged}")
                };
            }
            return Err(ShimError::Runc {
                args: described,
                status: status as i32,
                stderr: message,
            });
        }
        Ok(stdout)
    }
}

/// The last `"level":"error"` message runc wrote to its JSON log.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        (entry.get("level")?.as_str()? == "error")
            .then(|| entry.get("msg")?.as_str().map(str::to_string))?
    })
}

/// Everything a child wrote to one of its pipes, if it has that pipe.
fn drain(pipe: Option<&mut impl Read>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        pipe.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}
