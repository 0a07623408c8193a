//! detach: remove exactly what a record lists, then prove it is gone.

use crate::error::{Leftover, NetnsError, Result};
use crate::record::NetRecord;
use crate::rtnl::Rtnl;

/// Removes the record's filters, tap and (if ours) the uplink's ingress qdisc,
/// each "maybe created": an item already gone is fine. Then re-reads the
/// namespace; anything of the record still there, or any removal that
/// failed, is returned as `Leftovers`.
pub(crate) async fn teardown(rtnl: &Rtnl, record: &NetRecord) -> Result<()> {
    let mut problems = Vec::new();
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
            if let Err(e) = rtnl.delete_link(&tap).await {
                problems.push(Leftover::RemovalFailed(e));
            }
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
        Ok(())
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
