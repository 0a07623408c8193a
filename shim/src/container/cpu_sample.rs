//! What a request cost the shim process in CPU, next to its wall time: on these loaded 2-core
//! VMs a phase's wall time is the shim's compute, the kernel work it asks for, and time spent
//! waiting for a CPU, and only the first two are the shim's to cut.
//!
//! `getrusage(RUSAGE_SELF)` gives the user and system time of every thread of the shim (the
//! kernel's split between the two is sampled at the tick, their sum is exact); each thread's
//! `/proc/self/task/<tid>/schedstat` gives its time waiting on a run queue. A thread that
//! ended during the request loses its share of the wait; one started during it counts whole.

use std::time::Duration;

/// The shim's CPU and run-queue time so far.
#[derive(Clone, Copy)]
pub struct CpuSample {
    user: Duration,
    system: Duration,
    run_queue: Duration,
}

/// The difference between two samples (logged as `cpu_user_us`, `cpu_sys_us`, `runq_us`).
#[derive(Default, Debug)]
pub struct CpuSpent {
    pub user: Duration,
    pub system: Duration,
    pub run_queue: Duration,
}

impl CpuSample {
    pub fn now() -> Self {
        // SAFETY: getrusage fills a zeroed stack value.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        CpuSample {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
            run_queue: threads_run_queue_wait(),
        }
    }

    pub fn spent_since(&self, earlier: &CpuSample) -> CpuSpent {
        CpuSpent {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            run_queue: self.run_queue.saturating_sub(earlier.run_queue),
        }
    }
}

/// A task's time on a CPU and waiting on a run queue, from `/proc/<pid>/schedstat` (for a
/// process: its main thread's).
pub fn schedstat(pid: i32) -> Option<(Duration, Duration)> {
    parse_schedstat(&std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?)
}

fn parse_schedstat(text: &str) -> Option<(Duration, Duration)> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let on_cpu = fields.next()??;
    let waiting = fields.next()??;
    Some((Duration::from_nanos(on_cpu), Duration::from_nanos(waiting)))
}

/// The sum over this process's threads of their time waiting for a CPU (0 where unreadable).
fn threads_run_queue_wait() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| parse_schedstat(&text))
        .map(|(_, waiting)| waiting)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_shows_as_cpu_time() {
        let before = CpuSample::now();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = CpuSample::now().spent_since(&before);
        // Other test threads add their own time; this one alone spent most of the 30 ms.
        assert!(
            spent.user + spent.system + spent.run_queue >= Duration::from_millis(15),
            "{spent:?}"
        );
    }
}
