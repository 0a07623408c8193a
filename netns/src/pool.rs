//! The pool of netns workers, keyed by namespace identity.
//!
//! The pool is owned by whoever serves containers (the shim's service); it is
//! not a global. Its lock guards only the map and is never held across an
//! `.await` or any I/O beyond spawning a thread.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::detach::Detached;
use crate::error::{NetnsError, Result};
use crate::identity::{open_netns, NetnsIdentity};
use crate::record::NetRecord;
use crate::request::{Announce, AttachOutcome, AttachRequest, GuestAttachment, NetworkMode};
use crate::retirement::Retirement;
use crate::sweep::SweepReport;
use crate::worker::{Request, Worker};

type Key = (u64, u64);

/// The netns workers of one process.
#[derive(Clone, Default)]
pub struct NetnsPool {
    workers: Arc<Mutex<HashMap<Key, Entry>>>,
}

struct Entry {
    worker: Worker,
    /// Containers whose network lives in this namespace (attached or attaching).
    members: HashSet<String>,
    /// Requests sent and not yet answered.
    in_flight: usize,
}

impl NetnsPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the container's tap and redirects in the namespace at
    /// `netns_path`. The record is persisted (by `request.persist`) before
    /// anything is created; on error nothing is left.
    pub async fn attach(&self, netns_path: &Path, request: AttachRequest) -> Result<AttachOutcome> {
        self.attach_in_mode(netns_path, request, NetworkMode::Redirect)
            .await
    }

    /// Like [`NetnsPool::attach`], in the given network mode.
    pub async fn attach_in_mode(
        &self,
        netns_path: &Path,
        request: AttachRequest,
        mode: NetworkMode,
    ) -> Result<AttachOutcome> {
        self.attach_with(netns_path, request, mode, None).await
    }

    /// Like [`NetnsPool::attach_in_mode`], and sends on `announce` the guest's side of the
    /// attach (its tap's name, its address, MAC and MTU) as soon as the worker has decided
    /// it, before it persists the record and makes the tap, its qdiscs and its filters: the
    /// caller can plan the VMM meanwhile, then await this for the network to exist. Nothing is
    /// sent when there is no network or the attach fails before deciding; a failure after it
    /// is this call's error, with nothing left, as always.
    pub async fn attach_announcing(
        &self,
        netns_path: &Path,
        request: AttachRequest,
        mode: NetworkMode,
        announce: oneshot::Sender<GuestAttachment>,
    ) -> Result<AttachOutcome> {
        self.attach_with(netns_path, request, mode, Some(announce))
            .await
    }

    async fn attach_with(
        &self,
        netns_path: &Path,
        request: AttachRequest,
        mode: NetworkMode,
        announce: Announce,
    ) -> Result<AttachOutcome> {
        let (netns, identity) = open_netns(netns_path)?;
        let container_id = request.container_id.clone();
        let key = identity.key();
        {
            let mut workers = self.lock();
            if workers
                .get(&key)
                .is_some_and(|e| e.members.contains(&container_id))
            {
                return Err(NetnsError::AlreadyAttached {
                    container_id,
                    path: identity.path,
                });
            }
            let entry = Self::entry(&mut workers, key, netns, identity)?;
            entry.members.insert(container_id.clone());
        }
        let (reply, answer) = oneshot::channel();
        let outcome = self
            .call(key, Request::Attach(request, mode, announce, reply), answer)
            .await;
        let stays = matches!(outcome, Ok(AttachOutcome::Attached { .. }));
        self.finish(key, (!stays).then_some(&container_id)).await;
        outcome
    }

    /// Removes what `record` lists and verifies the namespace is clean. Works
    /// from the record alone (a new process after a crash). When the
    /// namespace no longer exists, there is nothing left to remove: Ok.
    /// Returns once a worker left with nothing to serve has ended too.
    pub async fn detach(&self, record: &NetRecord) -> Result<Detached> {
        let (result, retirement) = self.detach_before_retirement(record).await;
        retirement.wait().await;
        result
    }

    /// Like [`NetnsPool::detach`], but answers as soon as the namespace is verified clean:
    /// the worker's ending, when this was its last container, is the [`Retirement`] the
    /// caller waits for once it has reported the detach.
    pub async fn detach_before_retirement(
        &self,
        record: &NetRecord,
    ) -> (Result<Detached>, Retirement) {
        let key = record.netns.key();
        if !self.join_existing(key) {
            // No worker: a new process finishing a dead one's work. Reach the
            // namespace by the recorded path, or by any other path to it.
            let path = Some(record.netns.path.clone())
                .filter(|_| record.netns.path_still_names_it())
                .or_else(|| record.netns.find_other_path());
            let Some(path) = path else {
                tracing::info!(
                    container_id = record.container_id,
                    netns = ?record.netns.path,
                    "sandbox namespace is gone; its devices went with it"
                );
                return (Ok(Detached::default()), Retirement::none());
            };
            let (netns, identity) = match open_netns(&path) {
                Ok(opened) => opened,
                Err(error) => return (Err(error), Retirement::none()),
            };
            if identity.key() != key {
                tracing::warn!(
                    container_id = record.container_id,
                    netns = ?path,
                    "the path to the sandbox namespace was replaced while detaching; ours is gone"
                );
                return (Ok(Detached::default()), Retirement::none());
            }
            let mut workers = self.lock();
            if let Err(error) = Self::entry(&mut workers, key, netns, identity) {
                return (Err(error), Retirement::none());
            }
        }
        let (reply, answer) = oneshot::channel();
        let result = self
            .call(key, Request::Detach(record.clone(), reply), answer)
            .await;
        let result = match result {
            Err(NetnsError::WorkerGone { .. }) if self.tore_down(key, &record.container_id) => {
                Ok(Detached::default())
            }
            other => other,
        };
        (result, self.leave(key, Some(&record.container_id)))
    }

    /// Removes every urunc tap and redirect in the namespace (recovery).
    pub async fn sweep(&self, netns_path: &Path) -> Result<SweepReport> {
        let (netns, identity) = open_netns(netns_path)?;
        let key = identity.key();
        {
            let mut workers = self.lock();
            Self::entry(&mut workers, key, netns, identity)?;
        }
        let (reply, answer) = oneshot::channel();
        let result = self.call(key, Request::Sweep(reply), answer).await;
        self.finish(key, None).await;
        result
    }

    /// How many workers (threads) are alive.
    pub fn live_workers(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // The map stays consistent even if a holder panicked: each critical
        // section is a single insert/remove/counter update.
        self.workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry for `key`, spawning its worker; counts one request in flight.
    fn entry(
        workers: &mut HashMap<Key, Entry>,
        key: Key,
        netns: std::os::fd::OwnedFd,
        identity: NetnsIdentity,
    ) -> Result<&mut Entry> {
        let entry = match workers.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Entry {
                worker: Worker::spawn(netns, identity)?,
                members: HashSet::new(),
                in_flight: 0,
            }),
        };
        entry.in_flight += 1;
        Ok(entry)
    }

    /// Counts a request in flight on an existing worker, if there is one.
    fn join_existing(&self, key: Key) -> bool {
        match self.lock().get_mut(&key) {
            Some(entry) => {
                entry.in_flight += 1;
                true
            }
            None => false,
        }
    }

    fn tore_down(&self, key: Key, container_id: &str) -> bool {
        self.lock()
            .get(&key)
            .is_some_and(|e| e.worker.tore_down(container_id))
    }

    async fn call<T>(
        &self,
        key: Key,
        request: Request,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        let (sender, path) = {
            let workers = self.lock();
            let entry = workers.get(&key).expect("counted in flight, so present");
            (entry.worker.sender(), entry.worker.identity().path.clone())
        };
        if sender.send(request).is_err() {
            return Err(NetnsError::WorkerGone { path });
        }
        drop(sender);
        answer.await.unwrap_or(Err(NetnsError::WorkerGone { path }))
    }

    /// Ends a request and waits for the worker's thread when it was retired (see
    /// [`NetnsPool::leave`]), so the namespace is released when this returns.
    async fn finish(&self, key: Key, leaving: Option<&String>) {
        self.leave(key, leaving).wait().await;
    }

    /// Ends a request: drops `leaving` from the members and retires the
    /// worker when nothing is attached or in flight.
    fn leave(&self, key: Key, leaving: Option<&String>) -> Retirement {
        let retired = {
            let mut workers = self.lock();
            let Some(entry) = workers.get_mut(&key) else {
                return Retirement::none();
            };
            entry.in_flight -= 1;
            if let Some(container_id) = leaving {
                entry.members.remove(container_id);
            }
            if entry.in_flight == 0 && entry.members.is_empty() {
                workers.remove(&key)
            } else {
                None
            }
        };
        let Some(entry) = retired else {
            return Retirement::none();
        };
        let path = entry.worker.identity().path.clone();
        Retirement::of(entry.worker.retire(), path)
    }
}
