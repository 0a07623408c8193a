//! The CRI container log format containerd writes from a container's stdio:
//! `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, where `P` marks a partial
//! line continued by the next record.

use std::path::Path;
use std::time::Duration;

use crate::error::{HarnessError, Result};
use crate::wait::eventually_every;

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLogRecord {
    pub time: String,
    pub stream: String,
    pub partial: bool,
    pub text: String,
}

/// Parses one record; `None` for a line that is not in the CRI format.
pub fn parse_record(line: &str) -> Option<CriLogRecord> {
    let mut fields = line.splitn(4, ' ');
    let time = fields.next()?;
    let stream = fields.next()?;
    let tag = fields.next()?;
    let text = fields.next().unwrap_or("");
    let partial = match tag {
        "F" => false,
        "P" => true,
        _ => return None,
    };
    if !matches!(stream, "stdout" | "stderr") || !time.contains('T') {
        return None;
    }
    Some(CriLogRecord {
        time: time.to_string(),
        stream: stream.to_string(),
        partial,
        text: text.to_string(),
    })
}

/// The records of the log at `path`; a line outside the format is an error
/// (containerd must write nothing else there).
pub fn read_records(path: &Path) -> Result<Vec<CriLogRecord>> {
    let text = std::fs::read_to_string(path).map_err(HarnessError::io("read CRI log", path))?;
    text.lines()
        .map(|line| {
            parse_record(line).ok_or_else(|| HarnessError::Invalid {
                field: "CRI log line",
                value: line.to_string(),
                reason: format!("not `<time> <stream> <F|P> <text>` in {}", path.display()),
            })
        })
        .collect()
}

/// What the container printed, partial records joined, one line per
/// complete record.
pub fn logged_text(path: &Path) -> Result<String> {
    let mut text = String::new();
    for record in read_records(path)? {
        text.push_str(&record.text);
        if !record.partial {
            text.push('\n');
        }
    }
    Ok(text)
}

/// Polls the CRI log at `path` every `poll` until its text contains `text`
/// (true) or `limit` passes (false); an unreadable log counts as "not yet".
pub fn wait_for_logged(path: &Path, text: &str, limit: Duration, poll: Duration) -> bool {
    eventually_every(limit, poll, || {
        logged_text(path).is_ok_and(|logged| logged.contains(text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_records() {
        let full = parse_record("2026-01-02T03:04:05.000000006Z stdout F hello world").unwrap();
        assert_eq!(full.stream, "stdout");
        assert!(!full.partial);
        assert_eq!(full.text, "hello world");
        let partial = parse_record("2026-01-02T03:04:05Z stderr P part").unwrap();
        assert!(partial.partial);
        assert_eq!(
            parse_record("2026-01-02T03:04:05Z stdout F ").unwrap().text,
            ""
        );
        assert!(parse_record("garbage").is_none());
        assert!(parse_record("2026-01-02T03:04:05Z console F x").is_none());
    }
}
