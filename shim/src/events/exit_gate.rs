//! What containers report to the service: exits and OOM kills. Containers publish no event
//! themselves; the service does, in order. containerd must see a process's TaskStart before
//! its TaskExit, and a process that dies at once is reaped while its Start is still in flight
//! (`runc start`, the poststart hooks): what is reported about a process whose Start is in
//! flight is held until Start has published TaskStart, or has failed. containerd's Go shim
//! holds exits during Start for the same reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{EventSender, ExitReport};

/// A process: its container's id and its exec id (empty for the init process).
type ProcessKey = (String, String);

/// What a container reports about one of its processes.
enum Report {
    /// The cgroup's OOM killer ended it (reported just before its exit).
    OomKilled {
        container_id: String,
    },
    Exited(ExitReport),
}

/// The Starts in flight of one process (a second Start of it fails, but may overlap the first)
/// and the reports held meanwhile, in arrival order.
#[derive(Default)]
struct Held {
    starts: usize,
    reports: Vec<Report>,
}

pub struct ExitGate {
    events: EventSender,
    held: Mutex<HashMap<ProcessKey, Held>>,
}

impl ExitGate {
    pub fn new(events: EventSender) -> Arc<Self> {
        Arc::new(ExitGate {
            events,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ProcessKey, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A container reports that a process exited: TaskExit now, or once its Start is done.
    pub fn exited(&self, report: ExitReport) {
        let key = (report.container_id.clone(), report.exec_id.clone());
        self.report(key, Report::Exited(report));
    }

    /// A container reports that the OOM killer ended its init process: TaskOOM now, or once
    /// its Start is done.
    pub fn oom_killed(&self, container_id: &str) {
        let key = (container_id.to_string(), String::new());
        self.report(
            key,
            Report::OomKilled {
                container_id: container_id.to_string(),
            },
        );
    }

    fn report(&self, key: ProcessKey, report: Report) {
        let mut held = self.lock();
        match held.get_mut(&key) {
            Some(waiting) => waiting.reports.push(report),
            // Under the lock, so it cannot overtake what a finishing Start is releasing.
            None => self.publish(&report),
        }
    }

    fn publish(&self, report: &Report) {
        match report {
            Report::OomKilled { container_id } => self.events.task_oom(container_id),
            Report::Exited(exit) => self.events.task_exit(exit),
        }
    }

    /// Holds the exits of process `exec_id` of container `id` until the returned Start is
    /// done: [`StartInFlight::started`] or dropped (Start failed).
    pub fn starting(self: &Arc<Self>, id: &str, exec_id: &str) -> StartInFlight {
        let key = (id.to_string(), exec_id.to_string());
        self.lock().entry(key.clone()).or_default().starts += 1;
        StartInFlight {
            gate: Arc::clone(self),
            key,
        }
    }
}

/// A Start in flight; its process's exits are held until it is done.
pub struct StartInFlight {
    gate: Arc<ExitGate>,
    key: ProcessKey,
}

impl StartInFlight {
    /// The Start succeeded: TaskStart (TaskExecStarted for an exec), then the held exits.
    pub fn started(self, pid: u32) {
        let (id, exec_id) = &self.key;
        let events = &self.gate.events;
        if exec_id.is_empty() {
            events.task_start(id, pid);
        } else {
            events.task_exec_started(id, exec_id, pid);
        }
        // Dropping releases the held exits.
    }
}

impl Drop for StartInFlight {
    fn drop(&mut self) {
        let mut held = self.gate.lock();
        let Some(waiting) = held.get_mut(&self.key) else {
            return;
        };
        waiting.starts -= 1;
        if waiting.starts > 0 {
            return;
        }
        if let Some(waiting) = held.remove(&self.key) {
            for report in &waiting.reports {
                self.gate.publish(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::topics::{
        TASK_EXIT_EVENT_TOPIC, TASK_OOM_EVENT_TOPIC, TASK_START_EVENT_TOPIC,
    };

    fn exit_of(id: &str) -> ExitReport {
        ExitReport {
            container_id: id.to_string(),
            exec_id: String::new(),
            pid: 42,
            exit_status: 0,
            exited_at: std::time::SystemTime::now(),
        }
    }

    async fn topics(
        seen: &mut tokio::sync::mpsc::UnboundedReceiver<&'static str>,
        n: usize,
    ) -> Vec<&'static str> {
        let mut topics = Vec::new();
        for _ in 0..n {
            topics.push(seen.recv().await.expect("an event"));
        }
        topics
    }

    #[tokio::test]
    async fn an_oom_and_exit_during_start_are_published_after_task_start() {
        let (events, mut seen) = EventSender::for_tests();
        let gate = ExitGate::new(events);
        let start = gate.starting("c1", "");
        gate.oom_killed("c1");
        gate.exited(exit_of("c1"));
        // Another container's exit is not held.
        gate.exited(exit_of("c2"));
        assert_eq!(topics(&mut seen, 1).await, [TASK_EXIT_EVENT_TOPIC]);
        start.started(42);
        assert_eq!(
            topics(&mut seen, 3).await,
            [
                TASK_START_EVENT_TOPIC,
                TASK_OOM_EVENT_TOPIC,
                TASK_EXIT_EVENT_TOPIC
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_start_releases_the_exits_it_held() {
        let (events, mut seen) = EventSender::for_tests();
        let gate = ExitGate::new(events);
        let start = gate.starting("c1", "");
        gate.exited(exit_of("c1"));
        drop(start);
        assert_eq!(topics(&mut seen, 1).await, [TASK_EXIT_EVENT_TOPIC]);
        // Nothing is held any more.
        gate.exited(exit_of("c1"));
        assert_eq!(topics(&mut seen, 1).await, [TASK_EXIT_EVENT_TOPIC]);
    }
}
