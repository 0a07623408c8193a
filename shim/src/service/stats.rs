//! Stats: the container's cgroup metrics, in containerd's cgroup v1 metrics format, which
//! `ctr task metrics` decodes.

use containerd_shim_protos::protobuf::well_known_types::any::Any;

use crate::error::{Result, ShimError};

pub fn collect(pid: u32) -> Result<Any> {
    let cgroup = containerd_shim::cgroup::get_cgroup(pid).map_err(|e| ShimError::Cgroup {
        path: format!("/proc/{pid}/cgroup").into(),
        reason: e.to_string(),
    })?;
    let metrics =
        containerd_shim::cgroup::collect_metrics(&cgroup).map_err(|e| ShimError::Cgroup {
            path: format!("/proc/{pid}/cgroup").into(),
            reason: e.to_string(),
        })?;
    containerd_shim::util::convert_to_any(Box::new(metrics))
        .map_err(|e| ShimError::Events(format!("encode metrics: {e}")))
}
