//! urunc's execution timestamps (`[timestamps]` of its configuration file): one JSON line per
//! point of a container's Create and Start, in urunc's schema (internal/metrics/schema.go), so
//! urunc's own scripts (script/performance/measure*.py) read this shim's file unchanged.
//!
//! urunc spreads Create over three processes (`urunc create`, its re-exec'd child, `urunc
//! start`); this shim does it in one, so only the points that exist here are written, under
//! urunc's ID for the same moment. The network and the guest's disk are set up at Create here
//! (urunc does both just before it execs the VMM), so TS16 and TS17 come before TS07 in time;
//! their `timestampOrder` stays urunc's. The IPC points (TS03 to TS06, TS08, TS09, TS12 to
//! TS15) have no counterpart and are never written.

use serde::Serialize;

/// Which request a timer measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedRequest {
    Create,
    Start,
}

/// One point of urunc's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UruncTimestamp {
    pub id: &'static str,
    pub name: &'static str,
    pub order: u32,
}

const fn ts(id: &'static str, name: &'static str, order: u32) -> UruncTimestamp {
    UruncTimestamp { id, name, order }
}

const CREATE_INVOKED: UruncTimestamp = ts("TS00", "CR.invoked", 0);
const CREATE_TERMINATED: UruncTimestamp = ts("TS10", "CR.terminated", 10);
const START_INVOKED: UruncTimestamp = ts("TS11", "ST.invoked", 11);

/// The point a request's arrival stands for.
pub fn request_invoked(request: TimedRequest) -> UruncTimestamp {
    match request {
        TimedRequest::Create => CREATE_INVOKED,
        TimedRequest::Start => START_INVOKED,
    }
}

/// The point a request's answer stands for, when urunc has one.
pub fn request_answered(request: TimedRequest) -> Option<UruncTimestamp> {
    match request {
        TimedRequest::Create => Some(CREATE_TERMINATED),
        TimedRequest::Start => None,
    }
}

/// The point the end of one of the shim's phases (the names its phase timer marks) stands for.
pub fn phase_end(request: TimedRequest, phase: &str) -> Option<UruncTimestamp> {
    match (request, phase) {
        // The urunc configuration is resolved: urunc has then built its unikontainer.
        (TimedRequest::Create, "bundle_config") => Some(ts("TS01", "CR.unikontainer_created", 1)),
        // The node configuration is read: the container's own setup (its files, cgroup and
        // network) begins.
        (TimedRequest::Create, "node_config") => Some(ts("TS02", "CR.initial_setup", 2)),
        (TimedRequest::Create, "hooks") => Some(ts("TS07", "CR.hooks_executed", 7)),
        (TimedRequest::Create, "network_ready") => {
            Some(ts("TS16", "RX.network_setup_completed", 16))
        }
        (TimedRequest::Create, "guest_files") => Some(ts("TS17", "RX.disk_setup_completed", 17)),
        (TimedRequest::Start, "exec") => Some(ts("TS18", "RX.execve_hypervisor", 18)),
        _ => None,
    }
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "containerID")]
    container_id: &'a str,
    #[serde(rename = "timestampID")]
    id: &'a str,
    #[serde(rename = "timestampName")]
    name: &'a str,
    #[serde(rename = "timestampOrder")]
    order: u32,
    /// Nanoseconds since the Unix epoch (zerolog's `TimeFormatUnixNano`).
    time: u128,
}

/// One line of the timestamps file, as urunc's zerolog writer prints it (newline included).
pub fn timestamp_line(container_id: &str, point: UruncTimestamp, unix_nanos: u128) -> String {
    let line = Line {
        container_id,
        id: point.id,
        name: point.name,
        order: point.order,
        time: unix_nanos,
    };
    // A struct of strings and integers always serializes.
    let mut text = serde_json::to_string(&line).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_urunc_s_zerolog_line() {
        let line = timestamp_line(
            "c1",
            request_invoked(TimedRequest::Create),
            1703676366849599657,
        );
        assert_eq!(
            line,
            "{\"containerID\":\"c1\",\"timestampID\":\"TS00\",\"timestampName\":\"CR.invoked\",\"timestampOrder\":0,\"time\":1703676366849599657}\n"
        );
    }

    #[test]
    fn phases_map_to_urunc_s_points_and_others_to_none() {
        assert_eq!(
            phase_end(TimedRequest::Create, "hooks").map(|t| t.id),
            Some("TS07")
        );
        assert_eq!(
            phase_end(TimedRequest::Start, "exec").map(|t| t.id),
            Some("TS18")
        );
        assert_eq!(phase_end(TimedRequest::Start, "hooks"), None);
        assert_eq!(phase_end(TimedRequest::Create, "accel_probe"), None);
        assert_eq!(request_invoked(TimedRequest::Start).id, "TS11");
        assert_eq!(request_answered(TimedRequest::Start), None);
    }
}
