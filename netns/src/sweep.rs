//! sweep: recovery when the records were lost (or left by the Go urunc).

use std::collections::BTreeSet;

use crate::detach::is_tap;
use crate::error::{Leftover, NetnsError, Result};
use crate::request::UPLINK;
use crate::rtnl::Rtnl;
use crate::tap::is_urunc_tap_name;

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub taps: Vec<String>,
    /// Priorities of the redirect filters removed from the uplink's ingress.
    pub uplink_filter_priorities: Vec<u16>,
    /// Whether an emptied `ingress` qdisc on the uplink was removed.
    pub uplink_qdisc: bool,
}

/// Removes every `tap<N>_urunc` tap device and every mirred redirect filter
/// on eth0's ingress hook. An `ingress` qdisc on eth0 left without filters is
/// removed too (a CNI's qdisc has filters or is a clsact, which we keep).
pub(crate) async fn sweep(rtnl: &Rtnl) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut problems = Vec::new();
    for link in rtnl.links().await? {
        if is_urunc_tap_name(&link.name) && is_tap(link.kind.as_deref()) {
            match rtnl.delete_link(&link).await {
                Ok(_) => report.taps.push(link.name.clone()),
                Err(e) => problems.push(Leftover::RemovalFailed(e)),
            }
        }
    }
    if let Some(uplink) = rtnl.link_by_name(UPLINK).await? {
        let priorities: BTreeSet<u16> = rtnl
            .ingress_filters(&uplink)
            .await?
            .iter()
            .filter(|f| f.redirects_to.is_some())
            .map(|f| f.priority)
            .collect();
        for priority in priorities {
            match rtnl.delete_ingress_filters(&uplink, priority).await {
                Ok(_) => report.uplink_filter_priorities.push(priority),
                Err(e) => problems.push(Leftover::RemovalFailed(e)),
            }
        }
        let bare_ingress = rtnl.ingress_qdisc_kind(&uplink).await?.as_deref() == Some("ingress")
            && rtnl.ingress_filters(&uplink).await?.is_empty();
        if bare_ingress {
            match rtnl.delete_ingress_qdisc(&uplink).await {
                Ok(removed) => report.uplink_qdisc = removed,
                Err(e) => problems.push(Leftover::RemovalFailed(e)),
            }
        }
        if let Some(f) = rtnl
            .ingress_filters(&uplink)
            .await?
            .iter()
            .find(|f| f.redirects_to.is_some())
        {
            problems.push(Leftover::Filter {
                device: uplink.name.clone(),
                filter: f.clone(),
            });
        }
    }
    for link in rtnl.links().await? {
        if is_urunc_tap_name(&link.name) && is_tap(link.kind.as_deref()) {
            problems.push(Leftover::Tap { name: link.name });
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(NetnsError::Leftovers {
            path: rtnl.netns_path().to_path_buf(),
            leftovers: problems,
        })
    }
}
