//! The service's two tables: the containers it serves, and the Creates in flight. An id is
//! reserved for its Create before Create's first await (a second Create of it is refused
//! instead of sharing its state directory), and a Create in flight can be cancelled: by a Kill
//! or a Delete of its id (containerd sends Delete when its Create call gave up) or by the
//! shim's SIGTERM. The canceller waits until the Create has torn down what it made.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::container::blocking::BlockingSteps;
use crate::container::Container;
use crate::error::{Result, ShimError};

/// Who cancelled a Create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    Kill,
    Delete,
    Sigterm,
}

impl fmt::Display for CancelledBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelledBy::Kill => "a Kill of it",
            CancelledBy::Delete => "a Delete of it",
            CancelledBy::Sigterm => "the shim's SIGTERM",
        })
    }
}

/// One Create in flight.
pub struct InFlight {
    cancel: watch::Sender<Option<CancelledBy>>,
    /// Set when the Create is over (and, when cancelled, torn down).
    over: watch::Sender<bool>,
    /// Its blocking steps, which a cancellation waits for (see `container::blocking`).
    pub steps: BlockingSteps,
}

impl InFlight {
    /// Resolves with the first cancellation; never when none comes.
    pub async fn cancelled(&self) -> CancelledBy {
        let mut cancel = self.cancel.subscribe();
        let by = match cancel.wait_for(Option::is_some).await {
            Ok(by) => *by,
            // The sender lives in `self`: it cannot be dropped while this borrows it.
            Err(_) => None,
        };
        match by {
            Some(by) => by,
            None => std::future::pending().await,
        }
    }

    fn cancel(&self, by: CancelledBy) {
        self.cancel.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(by);
            }
            first
        });
    }

    async fn over(&self) {
        // `over` lives in `self`: the wait ends only when it is set.
        let _ = self.over.subscribe().wait_for(|over| *over).await;
    }
}

type Table = HashMap<String, Arc<Container>>;

/// The containers served and the Creates in flight; cloned into each Create's task.
#[derive(Clone, Default)]
pub struct Registry {
    containers: Arc<Mutex<Table>>,
    creating: Arc<Mutex<HashMap<String, Arc<InFlight>>>>,
}

impl Registry {
    pub fn table(&self) -> MutexGuard<'_, Table> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn creating(&self) -> MutexGuard<'_, HashMap<String, Arc<InFlight>>> {
        self.creating.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The containers served and the Creates in flight: a shim with a Create in flight is not
    /// idle (a Shutdown then must not end it under that Create).
    pub fn count(&self) -> usize {
        let table = self.table();
        table.len() + self.creating().len()
    }

    pub fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.table()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound { id: id.to_string() })
    }

    /// Reserves `id` for one Create until the reservation drops (after the container is in
    /// the table, or when Create failed or was cancelled); an id taken or being created is
    /// refused.
    pub fn reserve(&self, id: &str) -> Result<Reservation> {
        let table = self.table();
        let mut creating = self.creating();
        if table.contains_key(id) || creating.contains_key(id) {
            return Err(ShimError::AlreadyExists { id: id.to_string() });
        }
        let in_flight = Arc::new(InFlight {
            cancel: watch::channel(None).0,
            over: watch::channel(false).0,
            steps: BlockingSteps::default(),
        });
        creating.insert(id.to_string(), in_flight.clone());
        Ok(Reservation {
            registry: self.clone(),
            id: id.to_string(),
            in_flight,
        })
    }

    /// Cancels the Create of `id`, if one is in flight, and waits until it is over; false when
    /// there was none.
    pub async fn cancel_create(&self, id: &str, by: CancelledBy) -> bool {
        let Some(in_flight) = self.creating().get(id).cloned() else {
            return false;
        };
        tracing::info!(%id, %by, "cancelling the Create in flight");
        in_flight.cancel(by);
        in_flight.over().await;
        true
    }

    /// Cancels every Create in flight and waits until they are over; returns how many.
    pub async fn cancel_all_creates(&self, by: CancelledBy) -> usize {
        let ids: Vec<String> = self.creating().keys().cloned().collect();
        let mut cancelled = 0;
        for id in ids {
            if self.cancel_create(&id, by).await {
                cancelled += 1;
            }
        }
        cancelled
    }
}

/// An id held for the Create in flight.
pub struct Reservation {
    registry: Registry,
    id: String,
    in_flight: Arc<InFlight>,
}

impl Reservation {
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.registry.creating().remove(&self.id);
        self.in_flight.over.send_replace(true);
    }
}
