//! A worker told to end, whose thread may still be ending.
//!
//! Ending takes the thread a few hundred µs (its runtime and netlink socket closed, its stack
//! given back). A caller with something to report first (the shim's TaskExit, once the
//! network is verified gone) takes the [`Retirement`] and waits for it afterwards.

use std::path::PathBuf;
use std::thread::JoinHandle;

/// The thread of a retired worker, or nothing when the worker serves on.
#[must_use = "wait for the thread, or say why it may end unobserved"]
#[derive(Debug, Default)]
pub struct Retirement(Option<(JoinHandle<()>, PathBuf)>);

impl Retirement {
    pub(crate) fn of(thread: JoinHandle<()>, netns_path: PathBuf) -> Self {
        Self(Some((thread, netns_path)))
    }

    /// Nothing to wait for: the worker still serves other containers of its namespace.
    pub fn none() -> Self {
        Self(None)
    }

    /// Returns once the thread is gone, and with it the thread's hold on the namespace. A
    /// panic in the worker is logged here. Dropped without waiting, the thread still ends.
    pub async fn wait(self) {
        let Some((thread, path)) = self.0 else {
            return;
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!(netns = ?path, "netns worker panicked"),
            Err(e) => tracing::error!(netns = ?path, error = %e, "joining netns worker failed"),
        }
    }
}
