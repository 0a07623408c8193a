//! Logs of the serving shim go through `tracing` into a bundle's `log` FIFO, which containerd
//! reads and copies into its own log.
//!
//! containerd opens the `log` FIFO of every bundle it starts a task in, and stops reading it
//! when that task's bundle is deleted. A shim that serves several containers (a pod's, or a
//! node-wide shim's) would go silent once the container that started it is gone, so the shim
//! opens each container's FIFO as Create begins ([`add_container`]: Create's own lines go to a
//! FIFO containerd reads, not to a deleted container's) and writes to the oldest one still
//! live; [`remove_container`] drops a FIFO when its container is deleted. The last one is kept:
//! the shim's final lines go there rather than nowhere.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use runtime_core::{LogConfig, LogLevel};
use tracing::Level;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::error::{Result, ShimError};
use crate::syslog::Syslog;

/// The name containerd gives the FIFO in each bundle.
const LOG_FIFO: &str = "log";

/// One bundle's log FIFO, and the container it belongs to once Create names it.
struct Sink {
    bundle: PathBuf,
    container: Option<String>,
    /// Its container was deleted while it was the only sink: kept until another opens.
    retired: bool,
    file: File,
}

/// The serving shim's FIFOs, oldest first. Empty in `start` and `delete`, which log to stderr.
static SINKS: OnceLock<Mutex<Vec<Sink>>> = OnceLock::new();

fn sinks() -> MutexGuard<'static, Vec<Sink>> {
    SINKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Opens `<bundle>/log` (std, never tokio::fs: a FIFO would block runtime shutdown).
fn open_fifo(bundle: &Path) -> Result<File> {
    let path = bundle.join(LOG_FIFO);
    // containerd may open its read end after the shim starts: O_RDWR opens at once whatever
    // the order. O_NONBLOCK stays on: when nobody drains the FIFO, log lines are dropped
    // instead of the shim blocking on a full pipe.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| ShimError::io(format!("open log {}", path.display()), e))
}

/// Opens the log FIFO of `bundle` (the bundle the shim was started in) and installs the global
/// subscriber at [`level`]'s level.
pub fn init_fifo(bundle: &Path, debug: bool) -> Result<()> {
    let file = open_fifo(bundle)?;
    let bundle = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    sinks().push(Sink {
        bundle,
        container: None,
        retired: false,
        file,
    });
    install(|| LiveSink, debug);
    Ok(())
}

/// Logs to stderr, for the short-lived `start` and `delete` actions.
pub fn init_stderr(debug: bool) {
    install(std::io::stderr, debug);
}

/// Makes `container`'s bundle FIFO one the shim may log to (the one it started in is already
/// open). Without a FIFO (a bundle containerd did not start a shim in, as in tests) nothing
/// changes, and the reason is logged.
pub fn add_container(container: &str, bundle: &Path) {
    // The shim's own bundle is its working directory, as the kernel names it: compare alike.
    let bundle = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    let bundle = bundle.as_path();
    let mut sinks = sinks();
    if sinks.is_empty() {
        return;
    }
    if let Some(sink) = sinks
        .iter_mut()
        .find(|s| s.bundle == bundle && s.container.is_none())
    {
        sink.container = Some(container.to_string());
        return;
    }
    match open_fifo(bundle) {
        Ok(file) => {
            sinks.retain(|s| !s.retired);
            sinks.push(Sink {
                bundle: bundle.to_path_buf(),
                container: Some(container.to_string()),
                retired: false,
                file,
            });
        }
        Err(error) => {
            drop(sinks);
            tracing::warn!(%container, %error, "container's log FIFO not opened: the shim keeps logging to the others");
        }
    }
}

/// Stops logging to `container`'s FIFO: containerd stops reading it with the bundle's deletion
/// (or with a Create that failed).
pub fn remove_container(container: &str) {
    let mut sinks = sinks();
    let owned = |s: &Sink| s.container.as_deref() == Some(container);
    if sinks.len() > 1 {
        sinks.retain(|s| !owned(s));
    } else if let Some(last) = sinks.iter_mut().find(|s| owned(s)) {
        last.retired = true;
    }
}

/// The writer of every line: the oldest live FIFO. Each line is one `write_all` from the
/// formatter, so lines never interleave.
struct LiveSink;

impl Write for LiveSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match sinks().first_mut() {
            Some(sink) => sink.file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The node configuration's `[log]` section, or urunc's defaults and the reason when the file
/// does not load (logged once the subscriber is installed; Create refuses that file by key).
fn log_config() -> (LogConfig, Option<ShimError>) {
    match crate::node_config::load() {
        Ok(config) => (config.log, None),
        Err(error) => (runtime_core::NodeConfig::default().log, Some(error)),
    }
}

/// The level urunc would log at: `[log] level`, or with containerd's `-debug` the more verbose
/// of it and DEBUG.
fn level(log: &LogConfig, debug: bool) -> Level {
    match log.effective_level(debug) {
        LogLevel::Trace => Level::TRACE,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    }
}

fn install<W, M>(make_writer: M, debug: bool)
where
    W: Write + 'static,
    M: Fn() -> W + Send + Sync + 'static,
{
    let (log, config_error) = log_config();
    let installed = tracing_subscriber::fmt()
        .with_writer(make_writer.and(Syslog::new(log.syslog)))
        .with_ansi(false)
        .with_max_level(level(&log, debug))
        .with_target(false)
        .try_init();
    if let Err(error) = installed {
        eprintln!("containerd-shim-urunc-v2: logging already initialised: {error}");
    }
    if let Some(error) = config_error {
        tracing::warn!(%error, "the node configuration did not load: logging at info");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo_in(dir: &Path) {
        nix::unistd::mkfifo(&dir.join(LOG_FIFO), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    }

    /// Reads what is waiting in `file` (a FIFO opened read-write, non-blocking).
    fn pending(file: &mut File) -> String {
        use std::io::Read;
        let mut buf = vec![0; 4096];
        let n = file.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn lines_move_to_the_next_container_s_fifo_when_the_first_is_deleted() {
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fifo_in(first.path());
        fifo_in(second.path());
        sinks().push(Sink {
            bundle: std::fs::canonicalize(first.path()).unwrap(),
            container: None,
            retired: false,
            file: open_fifo(first.path()).unwrap(),
        });
        add_container("a", first.path());
        add_container("b", second.path());
        let mut first_reader = open_fifo(first.path()).unwrap();
        let mut second_reader = open_fifo(second.path()).unwrap();

        LiveSink.write_all(b"one\n").unwrap();
        assert_eq!(pending(&mut first_reader), "one\n");
        remove_container("a");
        LiveSink.write_all(b"two\n").unwrap();
        assert_eq!(pending(&mut second_reader), "two\n");
        remove_container("b");
        LiveSink.write_all(b"three\n").unwrap();
        assert_eq!(
            pending(&mut second_reader),
            "three\n",
            "the last FIFO stays"
        );
        sinks().clear();
    }
}
