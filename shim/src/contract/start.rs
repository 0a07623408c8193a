//! `start`: reuse the live shim of the container's group, or spawn the serving daemon, and tell
//! containerd where it listens in the form that containerd understands (`bootstrap.rs`).
//!
//! The socket is bound here, before the daemon exists, and handed to it as fd 3: containerd may
//! connect the moment it reads the address, and the kernel queues that connection until the
//! daemon accepts it. Nothing races.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use containerd_shim::Flags;

use super::bootstrap::StartInput;
use super::group::ShimGroup;
use super::{
    runtime_options, socket_path, CONTAINERD_VERSION_ENV, LISTENER_FD, LISTENER_FD_ENV,
    TASK_API_ENV, TTRPC_ADDRESS_ENV,
};
use crate::error::{Result, ShimError};

pub fn run(flags: &Flags) -> Result<()> {
    let input = StartInput::decode(&read_stdin()?)?;
    // Options this shim cannot honour fail the start, by name, before anything exists.
    runtime_options::accept(&input.runtime_options())?;
    // containerd 2.x passes `-bundle`; 1.6/1.7 only run `start` in the bundle.
    let bundle = Path::new(if flags.bundle.is_empty() {
        "."
    } else {
        &flags.bundle
    });
    let group = ShimGroup::from_env()?.key(&bundle.join("config.json"), &flags.id)?;
    let address = socket_address(flags, &input, &group);
    let path = socket_path(&address);

    // Concurrent `start`s of one group (pods of a node-wide shim, say) must not both find it
    // dead, both remove the socket and both spawn a daemon: the probe and the bind are one step.
    let _starting = lock_starts()?;
    if UnixStream::connect(path).is_ok() {
        // A live shim already serves this group (a pod, or the node): share it.
        return announce(&input, bundle, &address);
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
    spawn_daemon(flags, &input, &address, &listener)?;
    announce(&input, bundle, &address)
}

/// The lock every `start` holds from its liveness probe to its bind: one file for the node,
/// never removed (removing a lock file races with its next taker), held for milliseconds.
const START_LOCK: &str = "/run/urunc-rs/start.lock";

fn lock_starts() -> Result<nix::fcntl::Flock<fs::File>> {
    let path = Path::new(START_LOCK);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| ShimError::io(format!("create {}", parent.display()), e))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ShimError::io(format!("open {START_LOCK}"), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| ShimError::sys(format!("lock {START_LOCK}"), errno))
}

/// What containerd wrote on stdin; nothing when a person runs `start` at a terminal.
fn read_stdin() -> Result<Vec<u8>> {
    let mut stdin = std::io::stdin();
    let mut bytes = Vec::new();
    if !stdin.is_terminal() {
        stdin
            .read_to_end(&mut bytes)
            .map_err(|e| ShimError::io("read start's stdin", e))?;
    }
    Ok(bytes)
}

/// The group's socket: containerd's usual name for it, in the folder containerd 2.3+ may ask
/// for instead of `/run/containerd/s`.
fn socket_address(flags: &Flags, input: &StartInput, group: &str) -> String {
    let address = containerd_shim::socket_address(&flags.address, &flags.namespace, group);
    match input {
        StartInput::Bootstrap(params) => match params.socket_dir.as_deref() {
            Some(dir) if !dir.is_empty() => {
                let name = address.rsplit('/').next().unwrap_or_default();
                format!("unix://{}/{name}", dir.trim_end_matches('/'))
            }
            _ => address,
        },
        _ => address,
    }
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

fn spawn_daemon(
    flags: &Flags,
    input: &StartInput,
    address: &str,
    listener: &UnixListener,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| ShimError::io("find own executable", e))?;
    let mut command = Command::new(exe);
    command.env(TASK_API_ENV, input.task_api().to_string());
    if let StartInput::Bootstrap(params) = input {
        command.env(CONTAINERD_VERSION_ENV, &params.containerd_version);
        // The parameters are containerd 2.3+'s word; its flags and variables are kept only
        // for older shims and may go.
        if !params.ttrpc_address.is_empty() {
            command.env(TTRPC_ADDRESS_ENV, &params.ttrpc_address);
        }
    }
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

fn announce(input: &StartInput, bundle: &Path, address: &str) -> Result<()> {
    // containerd 1.6/1.7 read `address` in the bundle to reconnect after their own restart
    // (2.x keep `bootstrap.json` there themselves).
    fs::write(bundle.join("address"), address)
        .map_err(|e| ShimError::io("write address file", e))?;
    let answer = super::bootstrap::encode_answer(input, address)?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(&answer)
        .and_then(|()| stdout.flush())
        .map_err(|e| ShimError::io("print address", e))
}
