//! detach: remove exactly what a record lists, then prove it is gone.

use std::time::{Duration, Instant};

use crate::error::{Leftover, NetnsError, Result};
use crate::record::NetRecord;
use crate::rtnl::Rtnl;

/// A verified detach, and what it cost the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detached {
    /// How long the tap's deletion took (`None` when no tap was left to delete): an RCU
    /// barrier, the floor under a VMM exit's TaskExit, against which the rest is the shim's.
    pub tap_deletion: Option<Duration>,
}

/// Removes the record's filters, tap and (if ours) the uplink's ingress qdisc,
/// each "maybe created": an item already gone is fine. Then re-reads the
/// namespace; anything of the record still there, or any removal that
/// failed, is returned as `Leftovers`.
pub(crate) async fn teardown(rtnl: &Rtnl, record: &NetRecord) -> Result<Detached> {
    let mut problems = Vec::new();
    let mut detached = Detached::default();
    let uplink = rtnl.link_by_name(&record.uplink).await?;
    if let Some(uplink) = &uplink {
        if let Err(e) = rtnl
            .delete_ingress_filters(uplink, record.filter_priority)
            .await
        {
            problems.push(Leftover::RemovalFailed(e));
        }
    }
    // Deleting the tap also deletes its ingress qdisc and its filter.
    if let Some(tap) = rtnl.link_by_name(&record.tap).await? {
        if is_tap(tap.kind.as_deref()) {
            let started = Instant::now();
            if let Err(e) = rtnl.delete_link(&tap).await {
                problems.push(Leftover::RemovalFailed(e));
            }
            detached.tap_deletion = Some(started.elapsed());
        }
    }
    if let (Some(uplink), true) = (&uplink, record.uplink_qdisc_added) {
        if let Err(e) = rtnl.delete_ingress_qdisc(uplink).await {
            problems.push(Leftover::RemovalFailed(e));
        }
    }
    if let Some(nat) = &record.static_nat {
        crate::nat_rules::remove(&record.netns, nat, &mut problems);
    }
    problems.extend(leftovers(rtnl, record).await?);
    if problems.is_empty() {
        Ok(detached)
    } else {
        Err(NetnsError::Leftovers {
            path: record.netns.path.clone(),
            leftovers: problems,
        })
    }
}

/// What of `record` the namespace still holds.
pub(crate) async fn leftovers(rtnl: &Rtnl, record: &NetRecord) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    if let Some(tap) = rtnl.link_by_name(&record.tap).await? {
        if is_tap(tap.kind.as_deref()) {
            found.push(Leftover::Tap { name: tap.name });
        }
    }
    if let Some(uplink) = rtnl.link_by_name(&record.uplink).await? {
        for filter in rtnl.ingress_filters(&uplink).await? {
            if filter.priority == record.filter_priority {
                found.push(Leftover::Filter {
                    device: uplink.name.clone(),
                    filter,
                });
            }
        }
        if record.uplink_qdisc_added {
            if let Some(kind) = rtnl.ingress_qdisc_kind(&uplink).await? {
                found.push(Leftover::Qdisc {
                    device: uplink.name.clone(),
                    kind,
                });
            }
        }
    }
    if let Some(nat) = &record.static_nat {
        found.extend(crate::nat_rules::leftovers(&record.netns, nat)?);
    }
    Ok(found)
}

/// A device we may delete as "our tap": only tun/tap devices, never a
/// foreign device that happens to carry the name.
pub(crate) fn is_tap(kind: Option<&str>) -> bool {
    kind == Some("tun")
}
