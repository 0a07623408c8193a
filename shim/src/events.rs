//! Events to containerd: one channel, one publisher task.
//!
//! Every part of the service sends through a cloned [`EventSender`]; a single task forwards the
//! events in order to containerd's ttrpc event service, so TaskStart can never overtake
//! TaskCreate, nor TaskExit overtake TaskStart.

use containerd_shim::event::Event;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{MessageDyn, MessageField};
use containerd_shim_protos::ttrpc::context::Context;
use tokio::sync::mpsc;

use crate::error::{Result, ShimError};

struct Envelope {
    topic: String,
    event: Box<dyn MessageDyn>,
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
    pub exited_at: Timestamp,
}

impl EventSender {
    /// Connects to containerd's ttrpc address and starts the publisher task.
    pub async fn connect(ttrpc_address: &str, namespace: String) -> Result<Self> {
        let publisher = RemotePublisher::new(ttrpc_address)
            .await
            .map_err(|e| ShimError::Events(format!("connect to {ttrpc_address}: {e}")))?;
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        tokio::spawn(async move {
            while let Some(envelope) = receiver.recv().await {
                if let Err(error) = publisher
                    .publish(
                        Context::default(),
                        &envelope.topic,
                        &namespace,
                        envelope.event,
                    )
                    .await
                {
                    tracing::error!(topic = %envelope.topic, %error, "publishing event failed");
                }
            }
        });
        Ok(EventSender { sender })
    }

    fn send<E: Event + MessageDyn + 'static>(&self, event: E) {
        let topic = event.topic();
        tracing::debug!(%topic, "event");
        if self
            .sender
            .send(Envelope {
                topic: topic.clone(),
                event: Box::new(event),
            })
            .is_err()
        {
            tracing::error!(%topic, "publisher task is gone: event dropped");
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

    pub fn task_start(&self, id: &str, pid: u32) {
        self.send(TaskStart {
            container_id: id.to_string(),
            pid,
            ..Default::default()
        });
    }

    pub fn task_exit(&self, report: &ExitReport) {
        self.send(TaskExit {
            container_id: report.container_id.clone(),
            id: if report.exec_id.is_empty() {
                report.container_id.clone()
            } else {
                report.exec_id.clone()
            },
            pid: report.pid,
            exit_status: report.exit_status,
            exited_at: MessageField::some(report.exited_at.clone()),
            ..Default::default()
        });
    }

    pub fn task_delete(&self, report: &ExitReport) {
        self.send(TaskDelete {
            container_id: report.container_id.clone(),
            id: report.container_id.clone(),
            pid: report.pid,
            exit_status: report.exit_status,
            exited_at: MessageField::some(report.exited_at.clone()),
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

    pub fn task_exec_started(&self, id: &str, exec_id: &str, pid: u32) {
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

    pub fn task_oom(&self, id: &str) {
        self.send(TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        });
    }
}
