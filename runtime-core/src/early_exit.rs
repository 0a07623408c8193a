//! Why a VMM died right after its start, in words a `ctr` or `crictl` user can read.
//!
//! A VMM that fails at once (qemu's "failed to set MSR", firecracker without /dev/kvm, a
//! tender refusing a device the manifest lacks) says why on its stderr only. The shim keeps
//! the last lines of that stderr as it passes it on ([`LineTail`]), and when the VMM exits
//! early and badly ([`early_exit_message`]) puts them in its log and in the container's
//! termination message.

use std::collections::VecDeque;
use std::time::Duration;

/// An exit this soon after the VMM's start is reported with its stderr's tail.
pub const EARLY_EXIT_WINDOW: Duration = Duration::from_secs(10);
/// Lines and bytes of stderr kept.
pub const TAIL_LINES: usize = 8;
const TAIL_BYTES: usize = 4096;

/// The last [`TAIL_LINES`] lines of a byte stream, at most 4 KiB.
#[derive(Debug, Default, Clone)]
pub struct LineTail {
    lines: VecDeque<Vec<u8>>,
    partial: Vec<u8>,
}

impl LineTail {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the stream, split anywhere.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&chunk[..end]);
            let line = std::mem::take(&mut self.partial);
            self.keep(line);
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > TAIL_BYTES {
            let excess = self.partial.len() - TAIL_BYTES;
            self.partial.drain(..excess);
        }
    }

    fn keep(&mut self, line: Vec<u8>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES
            || self.lines.iter().map(Vec::len).sum::<usize>() > TAIL_BYTES
        {
            self.lines.pop_front();
        }
    }

    /// The kept lines, oldest first, the unterminated last one included.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
            .collect();
        if !self.partial.iter().all(u8::is_ascii_whitespace) {
            lines.push(String::from_utf8_lossy(&self.partial).trim_end().to_owned());
        }
        let excess = lines.len().saturating_sub(TAIL_LINES);
        lines.drain(..excess);
        lines
    }
}

/// The report for a VMM that exited with `status` after `ran`: `None` for a clean exit or
/// one after [`EARLY_EXIT_WINDOW`] (a guest that ran a while and ended is not "failed to
/// start").
pub fn early_exit_message(
    program: &str,
    status: u32,
    ran: Duration,
    stderr_tail: &[String],
) -> Option<String> {
    if status == 0 || ran > EARLY_EXIT_WINDOW {
        return None;
    }
    // containerd's encoding: above 128 is 128 + the signal that ended it.
    let how = if status > 128 {
        format!("ended with status {status} (signal {})", status - 128)
    } else {
        format!("ended with status {status}")
    };
    let said = if stderr_tail.is_empty() {
        "nothing on its stderr".to_owned()
    } else {
        format!("its stderr ended with: {}", stderr_tail.join(" | "))
    };
    Some(format!(
        "{program} {how} {} ms after its start; {said}",
        ran.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_across_split_chunks() {
        let mut tail = LineTail::new();
        for i in 0..20 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        tail.push(b"qemu-system-x86_64: error: failed to ");
        tail.push(b"set MSR 0x10a to 0x69\n\n   \nAborted");
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(
            lines[TAIL_LINES - 2],
            "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69"
        );
        assert_eq!(lines[TAIL_LINES - 1], "Aborted");
        assert_eq!(lines[0], "line 14");
    }

    #[test]
    fn the_tail_is_bounded_in_bytes() {
        let mut tail = LineTail::new();
        tail.push(&vec![b'x'; 100_000]);
        assert!(tail.lines().iter().map(String::len).sum::<usize>() <= 4096);
        tail.push(b"\n");
        tail.push(&[b'y'; 3000]);
        tail.push(b"\n");
        tail.push(&[b'z'; 3000]);
        tail.push(b"\n");
        let total: usize = tail.lines().iter().map(String::len).sum();
        assert!(total <= 4096, "{total}");
    }

    #[test]
    fn only_an_early_bad_exit_is_reported() {
        let tail = vec!["error: failed to set MSR 0x10a to 0x69".to_owned()];
        let message =
            early_exit_message("qemu-system-x86_64", 134, Duration::from_millis(120), &tail)
                .expect("reported");
        assert!(
            message.contains("ended with status 134 (signal 6) 120 ms after its start"),
            "{message}"
        );
        assert!(message.contains("failed to set MSR 0x10a"));
        let killed = early_exit_message("firecracker", 139, Duration::from_millis(5), &[])
            .expect("reported");
        assert!(killed.contains("(signal 11)"), "{killed}");
        assert!(killed.contains("nothing on its stderr"));
        assert_eq!(
            early_exit_message("qemu", 0, Duration::from_millis(5), &tail),
            None
        );
        assert_eq!(
            early_exit_message("qemu", 1, Duration::from_secs(60), &tail),
            None
        );
    }
}
