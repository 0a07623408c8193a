//! Where Create's and Start's time goes, one log line each per container: what
//! `shim_bench` reads from containerd's log to print Create → VMM exec phase by phase.
//! Two `Instant::now()` calls per phase: cheap enough to stay on in production.

use std::fmt;
use std::time::{Duration, Instant};

/// The time of each phase since the previous mark; a phase marked twice (state writes)
/// adds up.
pub struct PhaseTimer {
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
}

impl PhaseTimer {
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            spent: Vec::with_capacity(10),
        }
    }

    /// Charges the time since the previous mark to `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        let took = now - self.last;
        self.last = now;
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

    #[test]
    fn a_phase_marked_twice_adds_up_and_keeps_its_first_place() {
        let mut timer = PhaseTimer::start();
        timer.mark("a");
        std::thread::sleep(Duration::from_millis(2));
        timer.mark("b");
        std::thread::sleep(Duration::from_millis(2));
        timer.mark("a");
        let text = timer.to_string();
        let fields: Vec<(&str, u128)> = text
            .split(' ')
            .map(|f| {
                let (name, us) = f.split_once('=').unwrap();
                (name, us.parse().unwrap())
            })
            .collect();
        assert_eq!(fields.iter().map(|f| f.0).collect::<Vec<_>>(), ["a", "b"]);
        assert!(fields[0].1 >= 2000 && fields[1].1 >= 2000, "{text}");
    }
}
