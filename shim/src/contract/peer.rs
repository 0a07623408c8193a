//! Who may talk to the shim: a peer of the shim's own user and group only, as containerd's Go
//! shims require (ttrpc's `UnixSocketRequireSameUser`). `start` binds the socket 0600 already;
//! this still holds where the socket's mode or directory is looser than that.

use std::io;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use containerd_shim_protos::ttrpc::r#async::transport::Listener;
use tokio::net::{UnixListener, UnixStream};

/// A user and group id pair.
type Owner = (u32, u32);

/// The ttrpc listener over `listener` that hands the server only connections whose peer
/// (`SO_PEERCRED`, taken by the kernel at connect) has the shim's effective uid and gid. Others
/// are closed at once, unread, and logged. `accepted` counts the connections handed over.
pub fn same_user_only(listener: StdUnixListener, accepted: Arc<AtomicU64>) -> io::Result<Listener> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    let owner = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    Ok(Listener::new(futures::stream::unfold(
        listener,
        move |listener| {
            let accepted = accepted.clone();
            async move {
                let next = accept_owner(&listener, owner).await;
                accepted.fetch_add(1, Ordering::Relaxed);
                Some((next, listener))
            }
        },
    )))
}

async fn accept_owner(listener: &UnixListener, owner: Owner) -> io::Result<UnixStream> {
    loop {
        let (stream, _) = listener.accept().await?;
        match stream.peer_cred() {
            Ok(peer) if (peer.uid(), peer.gid()) == owner => return Ok(stream),
            Ok(peer) => tracing::warn!(
                uid = peer.uid(),
                gid = peer.gid(),
                pid = ?peer.pid(),
                "refused a connection to the shim socket from another user"
            ),
            Err(error) => {
                tracing::warn!(%error, "refused a connection to the shim socket: its peer is unknown")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::{Read, Write};

    /// Sends a ping as user `uid` (group = uid); what the server answered before closing.
    fn exchange_as(path: &std::path::Path, uid: u32) -> io::Result<Vec<u8>> {
        let mut stream = urunc_tests::unix_peer::connect_as(path, uid, uid)?;
        stream.write_all(b"ping")?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map(|_| answer)
    }

    #[tokio::test]
    async fn only_peers_of_the_shims_own_user_are_handed_to_the_server() {
        if !nix::unistd::Uid::effective().is_root() {
            skipped!("SKIPPED: a peer of another user needs root to become one");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shim.sock");
        let std_listener = StdUnixListener::bind(&path).expect("bind");
        // Looser than `start` makes it, so the refusal is the peer check's own.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let accepted = Arc::new(AtomicU64::new(0));
        let mut listener = same_user_only(std_listener, accepted.clone()).expect("listener");
        let server = tokio::spawn(async move {
            let mut socket = listener.next().await.expect("a connection")?;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut ping = [0u8; 4];
            socket.read_exact(&mut ping).await?;
            socket.write_all(b"pong").await?;
            io::Result::Ok(ping)
        });

        let stranger = tokio::task::spawn_blocking({
            let path = path.clone();
            move || exchange_as(&path, 65534)
        })
        .await
        .expect("join");
        // Closed unanswered: EOF, ECONNRESET (its request left unread) or EPIPE (closed before
        // the request was written).
        match stranger {
            Ok(answer) => assert!(answer.is_empty(), "a peer of another user was answered"),
            Err(error) => assert!(
                matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                "{error}"
            ),
        }
        let owner = tokio::task::spawn_blocking(move || exchange_as(&path, 0))
            .await
            .expect("join");
        assert_eq!(owner.expect("root connects"), b"pong");
        assert_eq!(&server.await.expect("join").expect("served"), b"ping");
    }
}
