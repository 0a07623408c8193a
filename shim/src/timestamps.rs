//! Writes urunc's execution timestamps (`[timestamps] enabled`, `destination`) for a Create or a
//! Start, from the phase timer that measured it; runtime-core says which phase is which of
//! urunc's points and formats the lines.
//!
//! The lines of one request are appended in one write to a file opened with `O_APPEND`, so
//! requests of concurrent containers never interleave within a line. As under urunc, a file
//! that cannot be written costs the timestamps, not the container: the error is logged.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use runtime_core::{timestamps, TimedRequest, TimestampsConfig};

use crate::container::phase_timer::PhaseTimer;

/// Appends the points of `request` that `timer` measured for container `id`, when enabled.
pub fn record(config: &TimestampsConfig, request: TimedRequest, id: &str, timer: &PhaseTimer) {
    if !config.enabled {
        return;
    }
    let nanos = |at: SystemTime| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut text = timestamps::timestamp_line(
        id,
        timestamps::request_invoked(request),
        nanos(timer.started_wall()),
    );
    let mut written = Vec::new();
    for (phase, at) in timer.wall_marks() {
        // A phase marked twice (state writes) stands for the point of its first end.
        if written.contains(&phase) {
            continue;
        }
        written.push(phase);
        if let Some(point) = timestamps::phase_end(request, phase) {
            text.push_str(&timestamps::timestamp_line(id, point, nanos(at)));
        }
    }
    if let Some(point) = timestamps::request_answered(request) {
        text.push_str(&timestamps::timestamp_line(
            id,
            point,
            nanos(SystemTime::now()),
        ));
    }
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.destination)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = appended {
        tracing::warn!(%id, destination = %config.destination, %error, "urunc timestamps not written ([timestamps] destination)");
    }
}
