//! Where Create's and Start's time goes, one log line each per container: what
//! `shim_bench` reads from containerd's log to print Create → VMM exec phase by phase.
//! Two `Instant::now()` calls per phase: cheap enough to stay on in production.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use super::cpu_sample::{CpuSample, CpuSpent};

/// The time of each phase since the previous mark; a phase marked twice (state writes)
/// adds up. The wall-clock time of every mark is kept too, for urunc's timestamps file.
pub struct PhaseTimer {
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
    started_wall: SystemTime,
    wall_marks: Vec<(&'static str, SystemTime)>,
    /// The shim's CPU when the timer started, for a request's CPU next to its wall time.
    cpu_at_start: Option<CpuSample>,
}

impl PhaseTimer {
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            spent: Vec::with_capacity(10),
            started_wall: SystemTime::now(),
            wall_marks: Vec::with_capacity(16),
            cpu_at_start: None,
        }
    }

    /// A timer that also samples the shim's CPU (Create and Start: a few file reads, taken
    /// before the clock starts, so the phases do not count them).
    pub fn with_cpu() -> Self {
        let cpu = CpuSample::now();
        Self {
            cpu_at_start: Some(cpu),
            ..Self::start()
        }
    }

    /// The shim's CPU since [`Self::with_cpu`] (`None` for a timer without a sample).
    pub fn cpu_spent(&self) -> Option<CpuSpent> {
        let start = self.cpu_at_start.as_ref()?;
        Some(CpuSample::now().spent_since(start))
    }

    /// When the timer started, on the wall clock.
    pub fn started_wall(&self) -> SystemTime {
        self.started_wall
    }

    /// Every mark in the order it was made, on the wall clock.
    pub fn wall_marks(&self) -> impl Iterator<Item = (&'static str, SystemTime)> + '_ {
        self.wall_marks.iter().copied()
    }

    /// Charges the time since the previous mark to `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        self.mark_with_part(phase, None);
    }

    /// Like [`Self::mark`], when a part of that time was measured inside it (the kernel's
    /// share of a step): `part`'s name is charged with its time, `phase` with the rest.
    pub fn mark_with_part(&mut self, phase: &'static str, part: Option<(&'static str, Duration)>) {
        self.wall_marks.push((phase, SystemTime::now()));
        let now = Instant::now();
        let mut took = now - self.last;
        self.last = now;
        if let Some((name, part)) = part {
            let part = part.min(took);
            self.charge(name, part);
            took -= part;
        }
        self.charge(phase, took);
    }

    fn charge(&mut self, phase: &'static str, took: Duration) {
        match self.spent.iter_mut().find(|(name, _)| *name == phase) {
            Some((_, total)) => *total += took,
            None => self.spent.push((phase, took)),
        }
    }
}

/// `phase=<µs> ...` (names without spaces, so the line parses), in the order the phases
/// first ran.
impl fmt::Display for PhaseTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, took)) in self.spent.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name}={}", took.as_micros())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `name=µs` fields of a timer's line, in order.
    fn fields_of(text: &str) -> Vec<(&str, u128)> {
        text.split(' ')
            .map(|f| {
                let (name, us) = f.split_once('=').unwrap();
                (name, us.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_phase_marked_twice_adds_up_and_keeps_its_first_place() {
        let mut timer = PhaseTimer::start();
        timer.mark("a");
        std::thread::sleep(Duration::from_millis(2));
        timer.mark("b");
        std::thread::sleep(Duration::from_millis(2));
        timer.mark("a");
        let text = timer.to_string();
        let fields = fields_of(&text);
        assert_eq!(fields.iter().map(|f| f.0).collect::<Vec<_>>(), ["a", "b"]);
        assert!(fields[0].1 >= 2000 && fields[1].1 >= 2000, "{text}");
    }

    #[test]
    fn a_part_measured_inside_a_phase_is_charged_apart_from_the_rest() {
        let mut timer = PhaseTimer::start();
        std::thread::sleep(Duration::from_millis(6));
        timer.mark_with_part("step", Some(("kernel", Duration::from_millis(4))));
        let text = timer.to_string();
        let fields = fields_of(&text);
        assert_eq!(
            fields.iter().map(|f| f.0).collect::<Vec<_>>(),
            ["kernel", "step"]
        );
        assert_eq!(fields[0].1, 4000, "{text}");
        assert!(fields[1].1 >= 2000, "{text}");
    }
}
