//! Kubernetes through CRI: a private containerd with its CRI plugin set up
//! for urunc-rs (runtime handler `urunc`), a private CNI network (Debian's
//! bridge and host-local plugins), a locally built pause image, and a CRI
//! client that drives pods the way the kubelet does.
//!
//! Start a [`CriNode`] per test and let it drop: it removes every pod it
//! finds through CRI, stops containerd, and removes what containerd and the
//! CNI plugins leave on the host (runc state of its own containers, pinned
//! pod namespaces, the bridge), never anything another test owns.

mod client;
mod cni;
mod config;
pub mod log;
pub mod netns_hold;
mod node;
pub mod pause_image;
pub mod pod;
pub mod probes;
mod skip;
pub mod steps;
mod subnet;

pub use client::{CriClient, CRI_CALL_LIMIT};
pub use cni::CniNetwork;
pub use config::{
    render_cri_config, runtimes_plugin, urunc_runtime_table, CriConfig, RUNTIME_HANDLER,
    RUNTIME_TYPE, URUNC_ANNOTATIONS,
};
pub use node::Pod;
pub use node::{CriNode, NodeConfig, CRI_NAMESPACE};
pub use pod::{container_config, pod_config, PodNetwork};
pub use skip::{node_or_skip, node_with_config_or_skip};
pub use subnet::SubnetClaim;
