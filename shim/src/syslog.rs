//! `[log] syslog = true`: every log line also goes to the local syslog socket, as urunc's
//! logrus syslog hook sends it there besides stderr.
//!
//! One datagram per line to `/dev/log`, `<PRI>urunc[<pid>]: <line>`, facility daemon and the
//! line's severity (syslogd and journald add the time themselves). The socket never blocks
//! the shim: a line syslog cannot take at once (no socket, a full queue) is dropped, the first
//! such failure is said once on the shim's stderr (a logger cannot log its own failure), and
//! the FIFO lines go on.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

const SOCKET: &str = "/dev/log";
/// The tag urunc's lines carry, so a node's filters match both runtimes.
const TAG: &str = "urunc";
const FACILITY_DAEMON: u8 = 3;

/// The syslog side of the shim's writer; disabled, it writes nothing.
pub struct Syslog {
    socket: Option<UnixDatagram>,
    failed: AtomicBool,
}

impl Syslog {
    pub fn new(enabled: bool) -> Self {
        let socket = if enabled {
            match UnixDatagram::unbound().and_then(|socket| {
                socket.set_nonblocking(true)?;
                Ok(socket)
            }) {
                Ok(socket) => Some(socket),
                Err(error) => {
                    eprintln!("containerd-shim-urunc-v2: no syslog socket: {error}");
                    None
                }
            }
        } else {
            None
        };
        Syslog {
            socket,
            failed: AtomicBool::new(false),
        }
    }
}

/// RFC 3164 severities: error 3, warning 4, info 6, debug 7.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One event's line on its way to syslog.
pub struct SyslogLine<'a> {
    syslog: &'a Syslog,
    severity: u8,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(socket) = &self.syslog.socket else {
            return Ok(buf.len());
        };
        let line = String::from_utf8_lossy(buf);
        let datagram = format!(
            "<{}>{TAG}[{}]: {}",
            FACILITY_DAEMON * 8 + self.severity,
            std::process::id(),
            line.trim_end_matches('\n')
        );
        if let Err(error) = socket.send_to(datagram.as_bytes(), SOCKET) {
            if !self.syslog.failed.swap(true, Ordering::Relaxed) {
                eprintln!("containerd-shim-urunc-v2: [log] syslog: send to {SOCKET}: {error}");
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SyslogLine {
            syslog: self,
            severity: severity(&Level::INFO),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        SyslogLine {
            syslog: self,
            severity: severity(meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_follow_rfc_3164() {
        assert_eq!(severity(&Level::ERROR), 3);
        assert_eq!(severity(&Level::WARN), 4);
        assert_eq!(severity(&Level::INFO), 6);
        assert_eq!(severity(&Level::TRACE), 7);
        let disabled = Syslog::new(false);
        assert_eq!(disabled.make_writer().write(b"x\n").unwrap(), 2);
    }
}
