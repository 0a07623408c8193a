//! The shim's socket under a containerd whose umask is 000: the socket is `srw-------`, a peer
//! of another user is refused (even once the mode is loosened, by the shim's `SO_PEERCRED`
//! check) and a root peer is answered.

mod shim_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, remove_holder, run_holder};
use urunc_tests::task_client::{connect_request, request_frame, TASK_V2};

const NOBODY: u32 = 65534;

/// Sends `frame` to the socket at `path` as user and group `uid`; returns the first 10 bytes
/// answered (the response header), or fewer when the shim closed the connection.
fn exchange_as(path: &Path, uid: u32, frame: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut stream = urunc_tests::unix_peer::connect_as(path, uid, uid)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(&frame)?;
    let mut header = Vec::new();
    (&mut stream).take(10).read_to_end(&mut header)?;
    Ok(header)
}

#[test]
fn the_shim_socket_is_private_and_answers_only_its_own_user_under_umask_000() {
    let test = "the_shim_socket_is_private_and_answers_only_its_own_user_under_umask_000";
    // containerd, and so the shim's `start`, inherit it. The only test of this file.
    let previous = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let ctrd = containerd(test, &[]);
    nix::sys::stat::umask(previous);
    let Some(ctrd) = ctrd else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    run_holder(&ctrd, dir.path(), "sock-holder", "sock-holder");
    let address = std::fs::read_to_string(ctrd.bundle_dir("sock-holder").join("address"))
        .expect("the shim's address file");
    let socket = Path::new(address.trim().trim_start_matches("unix://")).to_path_buf();
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{}: mode {mode:o}", socket.display());

    let frame = request_frame(TASK_V2, "Connect", &connect_request("sock-holder"));
    let root = exchange_as(&socket, 0, frame.clone()).expect("root connects");
    assert_eq!(root.len(), 10, "root was not answered: {root:?}");
    assert_eq!(root[8], 2, "not a ttrpc response: {root:?}");

    // The mode alone keeps nobody out; loosened, the peer check still must.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let stranger = exchange_as(&socket, NOBODY, frame);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    match stranger {
        Ok(answer) => assert!(answer.is_empty(), "uid {NOBODY} was answered: {answer:?}"),
        // The shim closed it unread: ECONNRESET, or EPIPE when closed before the write.
        Err(error) => assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{error}"
        ),
    }

    remove_holder(&ctrd, "sock-holder");
    assert_nothing_left(&ctrd);
}
