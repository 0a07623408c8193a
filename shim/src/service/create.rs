//! Create, in a task of its own: a Create whose request ttrpc gives up on (containerd's
//! deadline) still runs to its end, and the Delete containerd then sends cancels it. The
//! bundle is prepared and its urunc configuration read off the reactor, then the unikernel or
//! runc kind builds the container. A cancellation (see `in_flight`) drops the build wherever it
//! waits (a hook that never returns is killed with it), waits for its blocking steps, and tears
//! down what the persisted state records, through the one teardown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::in_flight::{CancelledBy, Reservation};
use crate::container::blocking::BlockingSteps;
use crate::container::phase_timer::PhaseTimer;
use crate::container::prepared::{with_undo, Prepared};
use crate::container::runc::RuncKind;
use crate::container::unikernel::UnikernelKind;
use crate::container::{teardown, Container, ShimContext};
use crate::error::{Result, ShimError};
use crate::mounts::RequestMount;
use crate::node_config::NodeConfigSource;
use crate::rootfs_file;
use crate::runc::Runc;
use crate::state::StateStore;
use crate::stdio::StdioPaths;

/// How long a cancelled Create waits for its blocking steps before tearing down anyway (a
/// step still stuck then only reads; see `container::blocking`).
const CANCEL_SETTLE: Duration = Duration::from_secs(2);

/// What Create was asked, in the shim's own terms.
pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    pub mounts: Vec<RequestMount>,
    pub stdio: StdioPaths,
    pub node_config: NodeConfigSource,
}

/// Builds the container of `request` (its id reserved by `reservation`) and puts it in the
/// table, or tears down what it made when cancelled.
pub async fn run(
    context: ShimContext,
    reservation: Reservation,
    request: CreateRequest,
) -> Result<Arc<Container>> {
    // Create's own lines (its phases among them) must reach a FIFO containerd reads: the one
    // it opened for this bundle, not the one of a container deleted since.
    crate::logging::add_container(&request.id, &request.bundle);
    let task = tokio::spawn(async move {
        let id = request.id.clone();
        let in_flight = reservation.in_flight();
        let built = tokio::select! {
            biased;
            by = in_flight.cancelled() => Err(by),
            built = build(&context, &in_flight.steps, request) => Ok(built),
        };
        let container = match built {
            Ok(container) => container,
            Err(by) => Err(cancelled(&context, &in_flight.steps, &id, by).await),
        };
        match container {
            Ok(container) => {
                reservation
                    .registry()
                    .table()
                    .insert(id.clone(), container.clone());
                Ok(container)
            }
            Err(error) => {
                crate::logging::remove_container(&id);
                Err(error)
            }
        }
        // The reservation drops here, after the table insert or the teardown.
    });
    task.await.map_err(|error| ShimError::BlockingStep {
        what: "Create",
        reason: error.to_string(),
    })?
}

/// Create: mount, decide unikernel or runc, build the container.
async fn build(
    context: &ShimContext,
    steps: &BlockingSteps,
    request: CreateRequest,
) -> Result<Arc<Container>> {
    let mut timer = PhaseTimer::with_cpu();
    let namespace = context.namespace.clone();
    let (prepared, config) = steps
        .run("prepare the bundle", move || {
            let CreateRequest {
                id,
                bundle,
                mounts,
                stdio,
                node_config,
            } = request;
            let mut prepared = Prepared::new(&namespace, &id, bundle, &mounts, stdio)?;
            prepared.node_config = node_config;
            match urunc_config(&prepared) {
                Ok(config) => Ok((prepared, config)),
                Err(error) => Err(with_undo(error, prepared.undo())),
            }
        })
        .await?;
    timer.mark("bundle_config");
    let id = prepared.id.clone();
    let container: Arc<Container> = match config {
        Some(config) => {
            tracing::info!(%id, unikernel = config.unikernel_type.as_str(), hypervisor = config.hypervisor.as_str(), "unikernel container");
            Arc::new(UnikernelKind::create(context.clone(), steps, prepared, config, timer).await?)
        }
        None => {
            tracing::info!(%id, "no urunc configuration: running with runc");
            Arc::new(RuncKind::create(context.clone(), prepared).await?)
        }
    };
    Ok(container)
}

/// After a cancellation: waits for the blocking steps, then tears down what the state records.
async fn cancelled(
    context: &ShimContext,
    steps: &BlockingSteps,
    id: &str,
    by: CancelledBy,
) -> ShimError {
    if !steps.settle(CANCEL_SETTLE).await {
        tracing::warn!(%id, "a blocking step of the cancelled Create is still stuck (it only reads); tearing down without it");
    }
    let cancelled = ShimError::CreateCancelled {
        id: id.to_string(),
        by,
    };
    match teardown_recorded(context, id).await {
        Ok(()) => {
            tracing::info!(%id, %by, "Create cancelled; everything it made is removed");
            cancelled
        }
        Err(error) => ShimError::Cleanup(vec![cancelled, error]),
    }
}

/// The one teardown of what the persisted state of `id` records (nothing when none is).
async fn teardown_recorded(context: &ShimContext, id: &str) -> Result<()> {
    let store = StateStore::new(&context.namespace, id)?;
    let Some(state) = store.read()? else {
        return Ok(());
    };
    let runc = Runc::new(&context.namespace, &state.bundle, context.router.clone());
    teardown::teardown(
        &state,
        &store,
        &runc,
        &context.pool,
        teardown::no_poststop(),
    )
    .await
}

/// The annotation CRI sets to `sandbox` on a pod's pause container.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// The urunc configuration from the spec's annotations, else `/urunc.json` in the rootfs.
fn urunc_config(prepared: &Prepared) -> Result<Option<runtime_core::UruncConfig>> {
    let annotations = &prepared.spec.annotations;
    // CRI copies the pod's annotations into the sandbox (pause) container's spec too: with
    // urunc's keys on the pod, the pause container must still run with runc.
    if annotations.get(CRI_CONTAINER_TYPE).map(String::as_str) == Some("sandbox") {
        return Ok(None);
    }
    let urunc_json = rootfs_file::read_urunc_json(&prepared.rootfs)?;
    Ok(runtime_core::UruncConfig::resolve(
        annotations,
        urunc_json.as_deref(),
    )?)
}
