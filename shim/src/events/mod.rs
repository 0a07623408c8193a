//! Events to containerd: one channel, one publisher task.
//!
//! Every part of the service sends through a cloned [`EventSender`]; a single task forwards the
//! events in order to containerd's ttrpc event service, so TaskStart can never overtake
//! TaskCreate, nor TaskExit overtake TaskStart.

mod exit_gate;
mod publisher;

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::topics;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::proto_time::proto_timestamp;
use crate::type_url::{self, TypeUrl};
pub use exit_gate::ExitGate;
use publisher::Publisher;

/// A task event: its message and the topic containerd files it under.
trait TaskEvent: TypeUrl {
    const TOPIC: &'static str;
}

macro_rules! topics {
    ($($event:ty => $topic:expr,)*) => {
        $(impl TaskEvent for $event {
            const TOPIC: &'static str = $topic;
        })*
    };
}

topics! {
    TaskCreate => topics::TASK_CREATE_EVENT_TOPIC,
    TaskStart => topics::TASK_START_EVENT_TOPIC,
    TaskExit => topics::TASK_EXIT_EVENT_TOPIC,
    TaskDelete => topics::TASK_DELETE_EVENT_TOPIC,
    TaskExecAdded => topics::TASK_EXEC_ADDED_EVENT_TOPIC,
    TaskExecStarted => topics::TASK_EXEC_STARTED_EVENT_TOPIC,
    TaskPaused => topics::TASK_PAUSED_EVENT_TOPIC,
    TaskResumed => topics::TASK_RESUMED_EVENT_TOPIC,
    TaskOOM => topics::TASK_OOM_EVENT_TOPIC,
}

struct Envelope {
    topic: &'static str,
    event: Any,
}

#[derive(Clone)]
pub struct EventSender {
    sender: mpsc::UnboundedSender<Envelope>,
}

/// What the lifecycle events carry about a process.
pub struct ExitReport {
    pub container_id: String,
    pub exec_id: String,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: std::time::SystemTime,
}

impl EventSender {
    /// Connects to containerd's ttrpc address and starts the publisher task.
    pub async fn connect(ttrpc_address: &str, namespace: String) -> Result<Self> {
        let mut publisher = Publisher::connect(ttrpc_address, namespace).await?;
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        tokio::spawn(async move {
            while let Some(envelope) = receiver.recv().await {
                publisher.forward(envelope.topic, envelope.event).await;
            }
        });
        Ok(EventSender { sender })
    }

    /// A sender whose events go to the returned receiver (topics only), for tests.
    #[cfg(test)]
    pub fn for_tests() -> (Self, mpsc::UnboundedReceiver<&'static str>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        let (topics, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(envelope) = receiver.recv().await {
                let _ = topics.send(envelope.topic);
            }
        });
        (EventSender { sender }, seen)
    }

    fn send<E: TaskEvent>(&self, event: E) {
        let topic = E::TOPIC;
        tracing::debug!(topic, "event");
        let event = match type_url::pack(&event) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(topic, %error, "encoding the event failed: event dropped");
                return;
            }
        };
        if self.sender.send(Envelope { topic, event }).is_err() {
            tracing::error!(topic, "publisher task is gone: event dropped");
        }
    }

    pub fn task_create(&self, id: &str, bundle: &str, pid: u32, stdio: [&str; 3], terminal: bool) {
        let [stdin, stdout, stderr] = stdio;
        self.send(TaskCreate {
            container_id: id.to_string(),
            bundle: bundle.to_string(),
            pid,
            io: MessageField::some(TaskIO {
                stdin: stdin.to_string(),
                stdout: stdout.to_string(),
                stderr: stderr.to_string(),
                terminal,
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    fn task_start(&self, id: &str, pid: u32) {
        self.send(TaskStart {
            container_id: id.to_string(),
            pid,
            ..Default::default()
        });
    }

    fn task_exit(&self, report: &ExitReport) {
        self.send(TaskExit {
            container_id: report.container_id.clone(),
            id: if report.exec_id.is_empty() {
                report.container_id.clone()
            } else {
                report.exec_id.clone()
            },
            pid: report.pid,
            exit_status: report.exit_status,
            exited_at: proto_timestamp(report.exited_at),
            ..Default::default()
        });
    }

    pub fn task_delete(&self, report: &ExitReport) {
        self.send(TaskDelete {
            container_id: report.container_id.clone(),
            id: report.container_id.clone(),
            pid: report.pid,
            exit_status: report.exit_status,
            exited_at: proto_timestamp(report.exited_at),
            ..Default::default()
        });
    }

    pub fn task_exec_added(&self, id: &str, exec_id: &str) {
        self.send(TaskExecAdded {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        });
    }

    fn task_exec_started(&self, id: &str, exec_id: &str, pid: u32) {
        self.send(TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid,
            ..Default::default()
        });
    }

    pub fn task_paused(&self, id: &str) {
        self.send(TaskPaused {
            container_id: id.to_string(),
            ..Default::default()
        });
    }

    pub fn task_resumed(&self, id: &str) {
        self.send(TaskResumed {
            container_id: id.to_string(),
            ..Default::default()
        });
    }

    fn task_oom(&self, id: &str) {
        self.send(TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        });
    }
}
