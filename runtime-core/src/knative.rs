//! The Knative facts urunc acts on, each in one place: the annotation CRI names a container
//! by, the names Knative gives its pod's containers, and which network a unikernel gets.
//!
//! urunc's rule: Knative's `user-container` gets the static network (the guest at a fixed
//! address behind the tap, masqueraded out of eth0), because Knative's queue-proxy in the same
//! pod must reach it at an address known in advance; every other unikernel takes over eth0
//! through the tc redirect. The address itself belongs to the netns crate, which creates it.

use std::collections::HashMap;

/// The annotation CRI sets to the container's name in the pod.
pub const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// Knative's name for the pod's application container (here the unikernel).
pub const USER_CONTAINER: &str = "user-container";
/// Knative's name for the pod's proxy sidecar (a plain container, run with runc).
pub const QUEUE_PROXY: &str = "queue-proxy";

/// How a unikernel's guest is connected to its sandbox's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestNetworkMode {
    /// The guest takes over eth0 (its address, gateway and MAC) through a tc redirect.
    Redirect,
    /// The guest sits at a fixed address behind the tap, masqueraded out of eth0.
    StaticNat,
}

/// The container's name in the pod, as CRI annotated it.
pub fn cri_container_name(annotations: &HashMap<String, String>) -> Option<&str> {
    annotations.get(CRI_CONTAINER_NAME).map(String::as_str)
}

/// urunc's rule (see the module): static for Knative's `user-container`, else the redirect.
pub fn network_mode(annotations: &HashMap<String, String>) -> GuestNetworkMode {
    if cri_container_name(annotations) == Some(USER_CONTAINER) {
        GuestNetworkMode::StaticNat
    } else {
        GuestNetworkMode::Redirect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> HashMap<String, String> {
        HashMap::from([(CRI_CONTAINER_NAME.to_string(), name.to_string())])
    }

    #[test]
    fn only_knatives_user_container_gets_the_static_network() {
        assert_eq!(
            network_mode(&named(USER_CONTAINER)),
            GuestNetworkMode::StaticNat
        );
        assert_eq!(
            network_mode(&named(QUEUE_PROXY)),
            GuestNetworkMode::Redirect
        );
        assert_eq!(
            network_mode(&named("user-container-2")),
            GuestNetworkMode::Redirect
        );
        assert_eq!(network_mode(&HashMap::new()), GuestNetworkMode::Redirect);
        let other_key = HashMap::from([("name".to_string(), USER_CONTAINER.to_string())]);
        assert_eq!(network_mode(&other_key), GuestNetworkMode::Redirect);
    }
}
