//! What a runtime left in a network namespace: the urunc taps, ingress qdiscs and tc filters
//! present after its containers are gone that were not there before; and their removal.

use anyhow::{bail, Result};
use urunc_tests::sandbox::{is_urunc_tap, run, NetSnapshot};

/// New taps, ingress qdiscs and tc filter rules of one namespace.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub taps: Vec<String>,
    pub qdiscs: Vec<String>,
    pub filters: Vec<String>,
}

impl Leftovers {
    /// What `after` holds that `before` did not.
    pub fn between(before: &NetSnapshot, after: &NetSnapshot) -> Self {
        let new = |now: Vec<&String>, then: Vec<&String>| -> Vec<String> {
            now.into_iter()
                .filter(|line| !then.contains(line))
                .cloned()
                .collect()
        };
        Leftovers {
            taps: new(after.urunc_taps(), before.urunc_taps()),
            qdiscs: new(after.ingress_qdiscs(), before.ingress_qdiscs()),
            filters: new(filter_rules(after), filter_rules(before)),
        }
    }

    /// `taps/qdiscs/filters`, as the table prints it.
    pub fn counts(&self) -> String {
        format!(
            "{}/{}/{}",
            self.taps.len(),
            self.qdiscs.len(),
            self.filters.len()
        )
    }

    pub fn is_empty(&self) -> bool {
        self.taps.is_empty() && self.qdiscs.is_empty() && self.filters.is_empty()
    }

    /// Deletes the leftover taps (their qdiscs and filters go with them) and the leftover
    /// ingress qdiscs of the namespace's other devices (their filters go with them), then checks
    /// against `before` that nothing is left. `netns = None` is the host's (`before` then a
    /// [`host_view`]): there only urunc taps are deleted (another process may own a new qdisc).
    pub fn remove(&self, netns: Option<&str>, before: &NetSnapshot) -> Result<()> {
        let in_ns = |args: &[&str]| -> Vec<String> {
            netns
                .map(|ns| vec!["-n".to_string(), ns.to_string()])
                .unwrap_or_default()
                .into_iter()
                .chain(args.iter().map(|arg| arg.to_string()))
                .collect()
        };
        let mut failures = Vec::new();
        let mut attempt = |program: &str, args: Vec<String>| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Err(e) = run(program, &args) {
                failures.push(format!("{e:#}"));
            }
        };
        for tap in &self.taps {
            attempt("ip", in_ns(&["link", "del", "dev", tap]));
        }
        if netns.is_some() {
            for device in self.qdiscs.iter().filter_map(|q| qdisc_device(q)) {
                if !is_urunc_tap(device) {
                    attempt("tc", in_ns(&["qdisc", "del", "dev", device, "ingress"]));
                }
            }
        }
        let now = snapshot(netns)?;
        let now = if netns.is_some() { now } else { host_view(now) };
        let left = Leftovers::between(before, &now);
        if !left.is_empty() {
            failures.push(format!("still there after removal: {left:?}"));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "removing leftovers in {}: {}",
                netns.unwrap_or("the host netns"),
                failures.join("; ")
            )
        }
    }
}

/// Reads a namespace (`None`: the host's) as [`NetSnapshot::take`] does, again when it fails:
/// other tests on this machine add and delete veths in the host netns, and a link that goes
/// between listing the links and reading its filters fails the read.
pub fn snapshot(netns: Option<&str>) -> Result<NetSnapshot> {
    let mut attempt = 1;
    loop {
        match NetSnapshot::take(netns) {
            Ok(snapshot) => return Ok(snapshot),
            Err(e) if attempt < SNAPSHOT_ATTEMPTS => {
                eprintln!(
                    "reading {}: {e:#}; again",
                    netns.unwrap_or("the host netns")
                );
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

const SNAPSHOT_ATTEMPTS: usize = 5;

/// The part of the host netns a runtime's leftovers can be told apart in while other tests run
/// on the machine: urunc taps, and qdiscs and filters on them or on an `eth0` (what urunc's
/// setup would touch had it run in the host netns).
pub fn host_view(snapshot: NetSnapshot) -> NetSnapshot {
    let ours = |device: &str| is_urunc_tap(device) || device == "eth0";
    NetSnapshot {
        qdiscs: snapshot
            .qdiscs
            .into_iter()
            .filter(|line| qdisc_device(line).is_some_and(ours))
            .collect(),
        filters: snapshot
            .filters
            .into_iter()
            .filter(|line| line.split_whitespace().next().is_some_and(ours))
            .collect(),
        links: snapshot.links,
    }
}

/// One line per tc filter rule (u32's key nodes: `... fh 800::800 order 2048 key ...`); its
/// hash table and header lines are not rules.
fn filter_rules(snapshot: &NetSnapshot) -> Vec<&String> {
    snapshot
        .filters
        .iter()
        .filter(|line| line.contains(" order ") && line.contains("::"))
        .collect()
}

/// The device of a `tc qdisc show` line (`qdisc ingress ffff: dev eth0 parent ffff:fff1 ...`).
fn qdisc_device(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    words.find(|word| *word == "dev")?;
    words.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(links: &[&str], qdiscs: &[&str], filters: &[&str]) -> NetSnapshot {
        let owned = |lines: &[&str]| lines.iter().map(|line| line.to_string()).collect();
        NetSnapshot {
            links: owned(links),
            qdiscs: owned(qdiscs),
            filters: owned(filters),
        }
    }

    const RULE: &str = "eth0 ingress: filter parent ffff: protocol all pref 49152 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 terminal flowid not_in_hw";
    const TABLE: &str = "eth0 ingress: filter parent ffff: protocol all pref 49152 u32 chain 0 fh 800: ht divisor 1";
    const INGRESS: &str = "qdisc ingress ffff: dev eth0 parent ffff:fff1 ----------------";

    #[test]
    fn counts_only_what_is_new_and_one_line_per_filter_rule() {
        let before = snapshot(
            &["eth0", "lo"],
            &["qdisc noqueue 0: dev lo root refcnt 2"],
            &[],
        );
        let after = snapshot(
            &["eth0", "lo", "tap0_urunc", "veth1"],
            &["qdisc noqueue 0: dev lo root refcnt 2", INGRESS],
            &[TABLE, RULE],
        );
        let left = Leftovers::between(&before, &after);
        assert_eq!(left.taps, ["tap0_urunc"]);
        assert_eq!(left.qdiscs, [INGRESS]);
        assert_eq!(left.filters, [RULE]);
        assert_eq!(left.counts(), "1/1/1");
        assert!(Leftovers::between(&after, &after).is_empty());
    }

    #[test]
    fn the_host_view_keeps_urunc_taps_and_eth0_only() {
        let other = "qdisc ingress ffff: dev veth9 parent ffff:fff1 ----------------";
        let view = host_view(snapshot(
            &["eth0", "veth9"],
            &[INGRESS, other],
            &[RULE, "veth9 ingress: x"],
        ));
        assert_eq!(view.qdiscs, [INGRESS]);
        assert_eq!(view.filters, [RULE]);
        assert_eq!(qdisc_device(other), Some("veth9"));
    }
}
