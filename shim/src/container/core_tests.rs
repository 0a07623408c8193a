//! The core's exec table, process lookup and exit reporting, without a container around it.

use std::sync::Arc;

use containerd_shim_protos::topics::{TASK_EXIT_EVENT_TOPIC, TASK_OOM_EVENT_TOPIC};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::container::process::Phase;
use crate::events::EventSender;

fn core() -> (Arc<ContainerCore>, mpsc::UnboundedReceiver<&'static str>) {
    let (events, seen) = EventSender::for_tests();
    let core = ContainerCore::new("c1", "/b", StdioPaths::default(), ExitGate::new(events));
    (core, seen)
}

fn exec(exec_id: &str) -> ExecRequest {
    ExecRequest {
        exec_id: exec_id.to_string(),
        stdio: StdioPaths::default(),
        spec: b"{}".to_vec(),
    }
}

fn missing(error: ShimError) -> ProcessMissing {
    match error {
        ShimError::ProcessNotFound { why, .. } => why,
        other => panic!("not ProcessNotFound: {other}"),
    }
}

#[tokio::test]
async fn execs_are_registered_once_found_by_ref_and_forgotten_only_when_not_running() {
    let (core, _seen) = core();
    assert!(core
        .process(&ProcessRef::Init)
        .expect("init")
        .which
        .is_init());
    core.add_exec(exec("probe")).expect("registered");
    assert!(matches!(
        core.add_exec(exec("probe")),
        Err(ShimError::AlreadyExists { id }) if id == "c1/probe"
    ));
    let unknown = ProcessRef::Exec("other".into());
    assert_eq!(
        missing(core.process(&unknown).err().expect("unknown")),
        ProcessMissing::Unknown
    );
    assert_eq!(
        missing(core.kill_exec("probe", 9).expect_err("no pid yet")),
        ProcessMissing::NotStarted
    );
    let probe = core.exec("probe").expect("registered");
    assert_eq!(probe.spec, b"{}");
    probe.process.set_running(u32::MAX);
    assert!(matches!(
        core.remove_exec("probe"),
        Err(ShimError::FailedPrecondition { .. })
    ));
    probe.process.set_stopped(0);
    assert_eq!(
        missing(core.kill_exec("probe", 9).expect_err("exited")),
        ProcessMissing::Exited
    );
    core.remove_exec("probe").expect("forgotten");
    assert_eq!(
        missing(core.remove_exec("probe").expect_err("gone")),
        ProcessMissing::Unknown
    );
    assert!(matches!(
        core.resize_pty(&ProcessRef::Init, 80, 24),
        Err(ShimError::FailedPrecondition { .. })
    ));
}

/// Steps that say the OOM killer struck, and tell when each step ran.
struct Recorded {
    before: Option<oneshot::Sender<ExitCode>>,
    after: Option<oneshot::Sender<Phase>>,
    init: Arc<Process>,
}

#[async_trait]
impl ExitSteps for Recorded {
    async fn before_report(&mut self, status: ExitCode) -> ExitFindings {
        if let Some(before) = self.before.take() {
            let _ = before.send(status);
        }
        ExitFindings { oom_killed: true }
    }

    fn after_report(mut self: Box<Self>) {
        if let Some(after) = self.after.take() {
            let _ = after.send(self.init.snapshot().phase);
        }
    }
}

#[tokio::test]
async fn an_exit_is_stopped_and_reported_after_the_kinds_steps_its_oom_kill_first() {
    let (core, mut seen) = core();
    let init = core.init().clone();
    let (reaped, exit) = oneshot::channel();
    let (before, before_ran) = oneshot::channel();
    let (after, after_ran) = oneshot::channel();
    core.watch_exit(
        init.clone(),
        exit,
        Box::new(Recorded {
            before: Some(before),
            after: Some(after),
            init: init.clone(),
        }),
    );
    init.set_running(4242);
    reaped.send(3).expect("the watcher waits");
    assert_eq!(before_ran.await.expect("before_report ran"), 3);
    let stopped = init.wait().await;
    assert_eq!(stopped.status, 3);
    assert_eq!(seen.recv().await, Some(TASK_OOM_EVENT_TOPIC));
    assert_eq!(seen.recv().await, Some(TASK_EXIT_EVENT_TOPIC));
    assert_eq!(after_ran.await.expect("after_report ran"), Phase::Stopped);
}

#[tokio::test]
async fn a_process_whose_reaper_is_gone_is_reported_lost() {
    let (core, mut seen) = core();
    let init = core.init().clone();
    let (reaped, exit) = oneshot::channel::<ExitCode>();
    core.watch_exit(init.clone(), exit, Box::new(NoExitSteps));
    drop(reaped);
    assert_eq!(init.wait().await.status, LOST_STATUS);
    assert_eq!(seen.recv().await, Some(TASK_EXIT_EVENT_TOPIC));
}
