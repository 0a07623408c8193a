//! A private containerd for one test: its root, state, sockets and log in one
//! temporary folder, its own containerd namespace, and the urunc-rs shim on its
//! PATH. Which containerd (Debian's 1.6.20 or the pinned 2.x) is chosen by
//! `URUNC_TEST_CONTAINERD` (`version.rs`).
//!
//! Create one per test and let it drop; do not keep one in a `static` (statics
//! are never dropped, so its containerd would outlive the test run).

mod config;
mod teardown;
mod version;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use config::ContainerdOptions;
pub use version::{ContainerdPrograms, ContainerdVersion, CONTAINERD_ENV};

use crate::command;
use crate::error::{HarnessError, Result};
use crate::shim_binary::locate_shim_binary;

/// The accelerator the shim is told to use unless `$URUNC_RS_ACCEL` says
/// otherwise: these machines' nested KVM is no faster than TCG for the test
/// guests, and TCG does not depend on the host's KVM. Tests of KVM-only VMMs
/// (and of the probe) set `auto`.
pub const TEST_ACCEL: &str = "tcg";
/// The variable the shim reads its accelerator from.
pub const ACCEL_ENV: &str = "URUNC_RS_ACCEL";
/// How long containerd gets to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A running private containerd. Dropping it kills its tasks, removes its
/// containers, stops it, kills anything still referring to its folder,
/// unmounts what is left there and removes the folder and runc's state for
/// its namespace. [`PrivateContainerd::stop`] does the same and returns the
/// errors instead of only printing them.
pub struct PrivateContainerd {
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    child: Option<Child>,
    namespace: String,
    grpc_socket: PathBuf,
    log_path: PathBuf,
    shim_binary: Option<PathBuf>,
    version: ContainerdVersion,
    programs: ContainerdPrograms,
}

impl PrivateContainerd {
    /// Starts a private containerd with the urunc-rs shim on its PATH and
    /// waits until it answers.
    pub fn start() -> Result<Self> {
        Self::start_with(ContainerdOptions::default())
    }

    /// Starts a private containerd as `options` say and waits until it answers.
    pub fn start_with(options: ContainerdOptions) -> Result<Self> {
        let shim_binary = if options.urunc_shim {
            Some(locate_shim_binary()?)
        } else {
            None
        };
        let version = options
            .version
            .map_or_else(ContainerdVersion::selected, Ok)?;
        let programs = version.programs()?;

        let dir = tempfile::Builder::new()
            .prefix("urunc-ctrd-")
            .tempdir()
            .map_err(HarnessError::io(
                "create temporary folder in",
                std::env::temp_dir(),
            ))?;
        let dir_path = dir.path().to_path_buf();
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("urunc-test-{}-{instance}", std::process::id());

        let root = dir_path.join("root");
        let state = dir_path.join("state");
        let opt = dir_path.join("opt");
        let grpc_socket = dir_path.join("containerd.sock");
        let ttrpc_socket = dir_path.join("containerd.sock.ttrpc");
        let log_path = dir_path.join("containerd.log");
        let config_path = dir_path.join("config.toml");
        for folder in [&root, &state, &opt] {
            std::fs::create_dir_all(folder).map_err(HarnessError::io("create", folder))?;
        }
        let layout = config::ContainerdLayout {
            root: &root,
            state: &state,
            grpc_socket: &grpc_socket,
            ttrpc_socket: &ttrpc_socket,
            opt: &opt,
        };
        std::fs::write(
            &config_path,
            config::render_config(&layout, &options, version),
        )
        .map_err(HarnessError::io("write", &config_path))?;

        let log =
            std::fs::File::create(&log_path).map_err(HarnessError::io("create", &log_path))?;
        let log_for_stderr = log
            .try_clone()
            .map_err(HarnessError::io("duplicate", &log_path))?;
        let mut containerd = Command::new(&programs.containerd);
        containerd
            .arg("--config")
            .arg(&config_path)
            .env(
                "PATH",
                search_path(
                    &[shim_binary.as_deref().and_then(Path::parent)]
                        .into_iter()
                        .chain(options.extra_path.iter().map(|dir| Some(dir.as_path())))
                        .chain([programs.bin_dir.as_deref()])
                        .collect::<Vec<_>>(),
                ),
            )
            .env(
                ACCEL_ENV,
                std::env::var(ACCEL_ENV).unwrap_or_else(|_| TEST_ACCEL.to_string()),
            )
            .envs(options.extra_env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr);
        let child = containerd.spawn().map_err(|source| HarnessError::Spawn {
            program: command::describe(&containerd),
            source,
        })?;

        let containerd = PrivateContainerd {
            dir: Some(dir),
            dir_path,
            child: Some(child),
            namespace,
            grpc_socket,
            log_path,
            shim_binary,
            version,
            programs,
        };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    /// Waits until containerd answers on its socket; fails early, with the
    /// log's tail, when containerd exited instead.
    pub fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.grpc_socket.exists() {
                let answer = self.ctr_within(&["version"], Duration::from_secs(5));
                if matches!(&answer, Ok(out) if out.status.success()) {
                    return Ok(());
                }
            }
            if !self.is_running() {
                return Err(HarnessError::CommandFailed {
                    command: "containerd".into(),
                    status: "exited during startup".into(),
                    stderr: self.log_tail(30),
                });
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "containerd to answer on {:?}; log:\n{}",
                        self.grpc_socket,
                        self.log_tail(30)
                    ),
                    seconds: READY_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `ctr --address <ours> --namespace <ours> args...` and returns its
    /// output whatever its exit status.
    pub fn ctr(&self, args: &[&str]) -> Result<Output> {
        command::output(&mut self.ctr_command(args))
    }

    /// Like [`ctr`](Self::ctr) but a non-zero exit is an error carrying
    /// ctr's stderr; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> Result<String> {
        command::checked(&mut self.ctr_command(args))
    }

    /// Like [`ctr`](Self::ctr), killing ctr after `limit`.
    pub fn ctr_within(&self, args: &[&str], limit: Duration) -> Result<Output> {
        command::output_within(&mut self.ctr_command(args), limit)
    }

    /// A `ctr` command aimed at this containerd and namespace, to adjust
    /// (stdin, env) before running.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut ctr = Command::new(&self.programs.ctr);
        ctr.arg("--address")
            .arg(&self.grpc_socket)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        ctr
    }

    /// Imports an OCI archive (from urunc-pack) into this namespace.
    pub fn import(&self, archive: &Path) -> Result<()> {
        let archive = archive.to_string_lossy();
        self.ctr_ok(&["images", "import", &archive]).map(|_| ())
    }

    /// The containerd namespace of this instance (unique per instance).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// containerd's gRPC socket.
    pub fn address(&self) -> &Path {
        &self.grpc_socket
    }

    /// The private folder holding root, state, sockets and log.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// containerd's state folder (bundles live in
    /// `state/io.containerd.runtime.v2.task/<namespace>/<id>`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir_path.join("state")
    }

    /// The bundle folder containerd makes for container `id`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.state_dir()
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// containerd's log (its stdout and stderr, at debug level; shim logs
    /// are forwarded into it).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The lines of containerd's log in which it complains about how a shim
    /// answered it (`-info`, the bootstrap answer, the task API version).
    pub fn complaints_about_shims(&self) -> Vec<String> {
        const COMPLAINTS: [&str; 5] = [
            "failed to load runtime info",
            "failed to query deprecated runtime-allow-mounts annotation",
            "unsupported shim version",
            "failed to introspect features of runtime",
            "flag provided but not defined",
        ];
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|line| COMPLAINTS.iter().any(|complaint| line.contains(complaint)))
            .map(str::to_string)
            .collect()
    }

    /// The last `lines` lines of containerd's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        command::file_tail(&self.log_path, lines)
    }

    /// Which containerd this is.
    pub fn version(&self) -> ContainerdVersion {
        self.version
    }

    /// Its `ctr`, for commands the harness does not wrap (a pty, another namespace).
    pub fn ctr_program(&self) -> &Path {
        &self.programs.ctr
    }

    /// The shim binary on containerd's PATH, when one was requested.
    pub fn shim_binary(&self) -> Option<&Path> {
        self.shim_binary.as_deref()
    }

    /// containerd's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn is_running(&self) -> bool {
        self.pid()
            .is_some_and(|pid| crate::host_processes::is_alive(pid as i32))
    }

    /// Tears everything down (see the type's doc) and returns every step
    /// that failed.
    pub fn stop(mut self) -> Result<()> {
        self.teardown()
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("PrivateContainerd({}): {error}", self.namespace);
        }
    }
}

/// PATH for containerd: `first` (the shim's folder, other runtimes' shims, containerd's own), then
/// this process's PATH (or the usual system folders when it has none).
fn search_path(first: &[Option<&Path>]) -> String {
    let inherited = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    first
        .iter()
        .flatten()
        .map(|dir| dir.display().to_string())
        .chain([inherited])
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod self_test;
