//! Create's blocking steps (reading the bundle and the image, mounting the rootfs, cgroups,
//! the ELF walk of the VMM's libraries, the plan's files) run on tokio's blocking pool, never
//! on the reactor: the shim serves every container from one thread, and a step stalled there
//! would stall Kill, Wait, State, the reaper and the events of every other container.
//!
//! A Create can be cancelled while one of its steps runs, but the step itself cannot (a thread
//! in `open()` of a FIFO waits for a writer). So each step holds a share of its Create's
//! [`BlockingSteps`] until it returns, and whoever cancels waits, for a bounded time, for the
//! steps to be over before tearing down what the persisted state records: a step that was
//! creating something has by then recorded and finished it. A step still stuck after that
//! time only reads (only those can wedge); its result is dropped when it returns.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use crate::error::{Result, ShimError};

/// The blocking steps of one Create (see the module).
#[derive(Clone, Default)]
pub struct BlockingSteps {
    /// Each running step holds a read share; [`BlockingSteps::settle`] takes the write side.
    running: Arc<RwLock<()>>,
}

impl BlockingSteps {
    /// Runs `step` (named `what` in errors) on the blocking pool and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        step: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let share = self.running.clone().read_owned().await;
        tokio::task::spawn_blocking(move || {
            let _share = share;
            step()
        })
        .await
        .map_err(|error| ShimError::BlockingStep {
            what,
            reason: error.to_string(),
        })?
    }

    /// Waits until no step runs, at most `limit`; false when one is still stuck.
    pub async fn settle(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.running.write())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    #[tokio::test(flavor = "current_thread")]
    async fn a_step_runs_off_the_reactor_and_settle_waits_for_it() {
        let steps = BlockingSteps::default();
        let (release, released) = mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let running = steps.clone();
        let step = tokio::spawn(async move {
            running
                .run("wait for the test", move || {
                    started.send(()).expect("the test waits for the start");
                    released.recv().expect("the test releases the step");
                    done.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
        });
        // The reactor (this one thread) still runs while the step blocks its own thread.
        has_started.await.expect("the step starts");
        assert!(
            !steps.settle(Duration::from_millis(20)).await,
            "settled while a step runs"
        );
        release.send(()).expect("release");
        assert!(
            steps.settle(Duration::from_secs(5)).await,
            "the step never ended"
        );
        assert!(finished.load(Ordering::SeqCst));
        step.await.expect("join").expect("the step's result");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_step_is_an_error_naming_it() {
        let error = BlockingSteps::default()
            .run("explode", || -> Result<()> { panic!("boom") })
            .await
            .expect_err("a panic is an error");
        assert!(
            matches!(
                &error,
                ShimError::BlockingStep {
                    what: "explode",
                    ..
                }
            ),
            "{error}"
        );
    }
}
