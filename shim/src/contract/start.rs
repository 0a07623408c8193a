//! `start`: reuse the live shim of the container's group, or spawn the serving daemon.
//!
//! The socket is bound here, before the daemon exists, and handed to it as fd 3: containerd may
//! connect the moment it reads the address, and the kernel queues that connection until the
//! daemon accepts it. Nothing races.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use containerd_shim::Flags;

use super::{socket_path, LISTENER_FD, LISTENER_FD_ENV, SANDBOX_ID_ANNOTATION};
use crate::error::{Result, ShimError};

pub fn run(flags: &Flags) -> Result<()> {
    let group = group_id(Path::new("config.json"), &flags.id)?;
    let address = containerd_shim::socket_address(&flags.address, &flags.namespace, &group);
    let path = socket_path(&address);

    if UnixStream::connect(path).is_ok() {
        // A live shim already serves this group (a pod): share it.
        return announce(&address);
    }
    if Path::new(path).exists() {
        // A dead shim's socket: nothing answers on it any more.
        fs::remove_file(path)
            .map_err(|e| ShimError::io(format!("remove stale socket {path}"), e))?;
    }
    if let Some(parent) = Path::new(path).parent() {
        // Private as the socket, whatever the umask (containerd's Go shims make it 0700 too).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| ShimError::io(format!("create {}", parent.display()), e))?;
    }
    let listener = bind_private(path)?;
    spawn_daemon(flags, &address, &listener)?;
    announce(&address)
}

/// Binds the shim's socket `srw-------` whatever containerd's umask: the socket file takes its
/// mode from the umask at bind, and `start` is single-threaded, so narrowing it around the bind
/// races with nothing. The server also refuses peers of another user (`peer`).
fn bind_private(path: &str) -> Result<UnixListener> {
    use nix::sys::stat::{umask, Mode};
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(previous);
    bound.map_err(|e| ShimError::io(format!("bind {path}"), e))
}

/// The grouping key: CRI's sandbox id when present, else the container's own id.
fn group_id(config: &Path, id: &str) -> Result<String> {
    let bytes = match fs::read(config) {
        Ok(bytes) => bytes,
        // Not every caller gives a bundle with a config (containerd always does).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(id.to_string()),
        Err(e) => return Err(ShimError::io(format!("read {}", config.display()), e)),
    };
    let spec: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| ShimError::Json {
            path: config.to_path_buf(),
            source,
        })?;
    Ok(spec
        .get("annotations")
        .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or(id)
        .to_string())
}

fn spawn_daemon(flags: &Flags, address: &str, listener: &UnixListener) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| ShimError::io("find own executable", e))?;
    let mut command = Command::new(exe);
    command
        .args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address])
        .args(["-publish-binary", &flags.publish_binary])
        .args(["-socket", address])
        .env(LISTENER_FD_ENV, LISTENER_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if flags.debug {
        command.arg("-debug");
    }
    let listener_fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls (dup2, setsid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // dup2 clears FD_CLOEXEC on the copy, so exactly this fd crosses the exec; when the
            // listener already is fd 3, dup2 does nothing and the flag is cleared by hand.
            if listener_fd == LISTENER_FD {
                if libc::fcntl(LISTENER_FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(listener_fd, LISTENER_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Own session: a signal to containerd's process group must not reach the shim.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The daemon outlives this process; nobody waits for it here (init adopts it).
    command
        .spawn()
        .map_err(|e| ShimError::io("spawn the serving shim", e))?;
    Ok(())
}

fn announce(address: &str) -> Result<()> {
    // containerd reads `address` in the bundle to reconnect after its own restart.
    fs::write("address", address).map_err(|e| ShimError::io("write address file", e))?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(address.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| ShimError::io("print address", e))
}
