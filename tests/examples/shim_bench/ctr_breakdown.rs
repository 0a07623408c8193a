//! Where one `ctr run -d` goes, for either runtime, from the events of the same run: containerd
//! publishes `/containers/create` when the container record exists; the shim publishes
//! `/tasks/create` at the end of its Create and `/tasks/start` at the end of its Start. So
//! ctr's start → `/containers/create` is ctr and containerd alone (image, snapshot, record);
//! `/containers/create` → `/tasks/create` holds the shim's `start` process, containerd's
//! connect and the shim's Create; `/tasks/create` → `/tasks/start` holds Create's reply, ctr's
//! Start request and the shim's Start; `/tasks/start` → ctr's exit is ctr alone. For our shim
//! its own Create and Start phases (its log) say how much of each is the shim's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::phases::phases_of;

/// One `ctr run -d` of container `id`, on the wall clock.
pub struct RunWindow {
    pub id: String,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Prints the median of each segment over `runs`; with `shim_log`, also the shim's own
/// Create and Start (its `Create phases` / `VMM started` lines in containerd's log).
pub fn print_breakdown(
    label: &str,
    events: &[String],
    runs: &[RunWindow],
    shim_log: Option<&str>,
) -> Result<()> {
    let mut segments: [Vec<Duration>; 4] = Default::default();
    let (mut create, mut start) = (Vec::new(), Vec::new());
    for run in runs {
        let container = format!("\"id\":\"{}\"", run.id);
        let task = format!("\"container_id\":\"{}\"", run.id);
        let at = |topic: &str, key: &str| -> Result<SystemTime> {
            events
                .iter()
                .find(|l| l.contains(topic) && l.contains(key))
                .and_then(|l| event_time(l))
                .with_context(|| format!("no {topic} event for {}", run.id))
        };
        let marks = [
            run.started,
            at("/containers/create", &container)?,
            at("/tasks/create", &task)?,
            at("/tasks/start", &task)?,
            run.ended,
        ];
        for (i, pair) in marks.windows(2).enumerate() {
            segments[i].push(pair[1].duration_since(pair[0]).unwrap_or_default());
        }
        if let Some(log) = shim_log {
            let sum = |marker: &str| -> Result<Duration> {
                let phases = phases_of(log, marker, &run.id)?;
                Ok(Duration::from_micros(phases.iter().map(|(_, us)| us).sum()))
            };
            create.push(sum("Create phases")?);
            start.push(sum("VMM started")?);
        }
    }
    println!(
        "  where `ctr run -d` goes, {label} (median ms of {} rounds):",
        runs.len()
    );
    let names = [
        "ctr start -> /containers/create (ctr, containerd)",
        "-> /tasks/create (shim start + connect + Create)",
        "-> /tasks/start (Create reply, ctr's Start, Start)",
        "-> ctr exit (Start reply, ctr)",
    ];
    for (name, samples) in names.iter().zip(segments.iter_mut()) {
        println!("    {name:<52} {:>6.1}", median_ms(samples));
    }
    if shim_log.is_some() {
        println!(
            "    of which the shim's own Create phases            {:>6.1}",
            median_ms(&mut create)
        );
        println!(
            "    of which the shim's own Start phases             {:>6.1}",
            median_ms(&mut start)
        );
    }
    Ok(())
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// The time `ctr events` prints first: `2026-12-02 18:47:12.123456789 +0000 UTC ...`.
fn event_time(line: &str) -> Option<SystemTime> {
    let mut fields = line.split_whitespace();
    let (date, time, zone) = (fields.next()?, fields.next()?, fields.next()?);
    if zone != "+0000" {
        return None;
    }
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = clock.split(':').map(|p| p.parse::<u64>().ok());
    let (h, min, s) = (hms.next()??, hms.next()??, hms.next()??);
    let nanos: u64 = format!("{fraction:0<9}")[..9].parse().ok()?;
    let days = days_from_civil(y, m, d);
    let seconds = u64::try_from(days).ok()? * 86_400 + h * 3600 + min * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_nanos(nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
