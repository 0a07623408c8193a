//! Forwarding events to containerd's ttrpc event service, one at a time, in order.
//!
//! Written here rather than with the `containerd-shim` crate's `RemotePublisher`: that one asks
//! protobuf's reflection for each event's type URL (see `type_url.rs` for what that costs), and
//! requeues a failed event behind later ones, so a TaskExit could overtake the TaskStart it
//! follows. Here a failed event is retried, over a fresh connection, before the next is sent.

use std::time::{Duration, SystemTime};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::ttrpc::context::{with_timeout, Context};

use crate::error::{Result, ShimError};
use crate::proto_time::proto_timestamp;

/// How often one event is offered to containerd before it is dropped (and logged).
const ATTEMPTS: u32 = 5;
/// How long containerd may take to accept one event.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Publisher {
    address: String,
    namespace: String,
    client: EventsClient,
}

impl Publisher {
    /// Connects to containerd's ttrpc socket (`TTRPC_ADDRESS`: a path, or a `unix://` URL).
    pub async fn connect(ttrpc_address: &str, namespace: String) -> Result<Self> {
        let address = if ttrpc_address.contains("://") {
            ttrpc_address.to_string()
        } else {
            format!("unix://{ttrpc_address}")
        };
        let client = connect_events(&address).await?;
        Ok(Publisher {
            address,
            namespace,
            client,
        })
    }

    /// Offers one event until containerd accepts it, reconnecting between attempts; after
    /// `ATTEMPTS` refusals the event is dropped with an error in the log.
    pub async fn forward(&mut self, topic: &str, event: Any) {
        let request = ForwardRequest {
            envelope: MessageField::some(Envelope {
                timestamp: proto_timestamp(SystemTime::now()),
                namespace: self.namespace.clone(),
                topic: topic.to_string(),
                event: MessageField::some(event),
                ..Default::default()
            }),
            ..Default::default()
        };
        for attempt in 1..=ATTEMPTS {
            let context: Context = with_timeout(FORWARD_TIMEOUT.as_nanos() as i64);
            let error = match self.client.forward(context, &request).await {
                Ok(_) => return,
                Err(error) => error,
            };
            if attempt == ATTEMPTS {
                tracing::error!(topic, %error, attempts = ATTEMPTS, "containerd refused the event: dropped");
                return;
            }
            tracing::warn!(topic, %error, attempt, "forwarding the event failed: retrying");
            tokio::time::sleep(Duration::from_secs(attempt.into())).await;
            match connect_events(&self.address).await {
                Ok(client) => self.client = client,
                Err(error) => tracing::warn!(topic, %error, "reconnecting to containerd failed"),
            }
        }
    }
}

async fn connect_events(address: &str) -> Result<EventsClient> {
    let client = Client::connect(address)
        .await
        .map_err(|source| ShimError::EventsConnect {
            address: address.to_string(),
            source,
        })?;
    Ok(EventsClient::new(client))
}
