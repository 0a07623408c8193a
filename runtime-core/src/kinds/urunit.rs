//! urunit's configuration file, in the format urunc writes it (unikernels/freebsd.go
//! `buildUrunitConfig`, the markers of unikernels/linux.go). urunit is the init urunc's
//! FreeBSD images run; it reads this file from a raw block device, one line per entry:
//!
//! ```text
//! UES                      environment: one KEY=VALUE per line
//! PATH=/bin
//! UEE
//! UCS                      the process: user, group, working directory, argc, argv
//! UID:0
//! GID:0
//! WD:/
//! ARC:2
//! ARV:/bin/sh
//! ARV:-c
//! UCE
//! UBS                      block mounts other than the root: drive id, mount point
//! ID:vol0
//! MP:/data
//! UBE
//! UNS                      the network: address, gateway, dotted mask (empty without one)
//! IP:10.0.0.2
//! GW:10.0.0.1
//! MSK:255.255.255.0
//! UNE
//! PAD                      then newlines up to a whole number of 512-byte sectors
//! ```
//!
//! The file is padded because a VMM shows a raw file to the guest in whole sectors
//! (firecracker hides a trailing partial one). A value is one line, so a value with a line
//! break (or any control character) is refused naming its field rather than written as two
//! lines urunit would misread; an environment entry must be `KEY=VALUE` with a POSIX name,
//! so no entry can read as a marker.

use super::words::env_entry;
use super::GuestArg;
use crate::config::refuse_control_chars;
use crate::error::CoreError;
use crate::net::GuestNetwork;

/// The sector size the file is padded to.
pub(crate) const SECTOR_SIZE: usize = 512;

/// A block device urunit mounts, by the id the guest sees (its serial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockMount {
    pub drive_id: String,
    pub mount_point: String,
}

/// What urunit is told.
#[derive(Debug, Clone)]
pub(crate) struct UrunitConfig<'a> {
    pub env: &'a [String],
    pub uid: u32,
    pub gid: u32,
    pub cwd: &'a str,
    /// The program urunit starts and its arguments.
    pub argv: &'a [GuestArg],
    pub block_mounts: &'a [BlockMount],
    pub network: Option<&'a GuestNetwork>,
}

/// The file's exact contents (ASCII framing around the spec's own UTF-8 values).
pub(crate) fn render(config: &UrunitConfig<'_>) -> Result<String, CoreError> {
    let mut lines: Vec<String> = vec!["UES".into()];
    for (i, entry) in config.env.iter().enumerate() {
        let field = format!("process.env[{i}]");
        refuse_control_chars(&field, entry)?;
        env_entry(&field, entry)?;
        lines.push(entry.clone());
    }
    lines.extend(["UEE".into(), "UCS".into()]);
    refuse_control_chars("process.cwd", config.cwd)?;
    lines.push(format!("UID:{}", config.uid));
    lines.push(format!("GID:{}", config.gid));
    lines.push(format!("WD:{}", config.cwd));
    lines.push(format!("ARC:{}", config.argv.len()));
    for arg in config.argv {
        refuse_control_chars(&arg.field, &arg.value)?;
        lines.push(format!("ARV:{}", arg.value));
    }
    lines.extend(["UCE".into(), "UBS".into()]);
    for mount in config.block_mounts {
        refuse_control_chars("block mount point", &mount.mount_point)?;
        lines.push(format!("ID:{}", mount.drive_id));
        lines.push(format!("MP:{}", mount.mount_point));
    }
    lines.extend(["UBE".into(), "UNS".into()]);
    let (ip, gateway, mask) = match config.network {
        Some(net) => (
            net.ipv4.to_string(),
            net.gateway.map(|g| g.to_string()).unwrap_or_default(),
            net.netmask().to_string(),
        ),
        None => Default::default(),
    };
    lines.push(format!("IP:{ip}"));
    lines.push(format!("GW:{gateway}"));
    lines.push(format!("MSK:{mask}"));
    lines.extend(["UNE".into(), "PAD".into()]);
    let mut text = lines.join("\n");
    text.push('\n');
    let padded = text.len().div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
    text.extend(std::iter::repeat_n('\n', padded - text.len()));
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn arg(i: usize, value: &str) -> GuestArg {
        GuestArg {
            field: format!("process.args[{i}]"),
            value: value.into(),
        }
    }

    /// urunc's own example (freebsd_test.go `TestFreeBSDBuildUrunitConfig`), with a volume.
    #[test]
    fn sections_in_urunc_order_padded_to_a_sector() {
        let env = ["PATH=/bin:/sbin".to_owned(), "FOO=bar".to_owned()];
        let argv = [
            arg(1, "/rescue/sh"),
            arg(2, "-c"),
            arg(3, "echo hello world"),
        ];
        let mounts = [BlockMount {
            drive_id: "FCvol0".into(),
            mount_point: "/data".into(),
        }];
        let net = GuestNetwork {
            tap: "tap0_urunc".into(),
            mac: "02:42:ac:11:00:02".into(),
            ipv4: Ipv4Addr::new(172, 17, 0, 2),
            prefix_len: 16,
            gateway: Some(Ipv4Addr::new(172, 17, 0, 1)),
            mtu: 1500,
        };
        let text = render(&UrunitConfig {
            env: &env,
            uid: 1001,
            gid: 1001,
            cwd: "/tmp",
            argv: &argv,
            block_mounts: &mounts,
            network: Some(&net),
        })
        .expect("renders");
        let head = "UES\nPATH=/bin:/sbin\nFOO=bar\nUEE\n\
UCS\nUID:1001\nGID:1001\nWD:/tmp\nARC:3\nARV:/rescue/sh\nARV:-c\nARV:echo hello world\nUCE\n\
UBS\nID:FCvol0\nMP:/data\nUBE\n\
UNS\nIP:172.17.0.2\nGW:172.17.0.1\nMSK:255.255.0.0\nUNE\n\
PAD\n";
        assert!(text.starts_with(head), "{text:?}");
        assert_eq!(text.len(), SECTOR_SIZE);
        assert!(text[head.len()..].chars().all(|c| c == '\n'));
    }

    #[test]
    fn a_value_that_would_break_a_line_is_refused_naming_its_field() {
        let env = ["A=1\nUEE".to_owned()];
        let config = UrunitConfig {
            env: &env,
            uid: 0,
            gid: 0,
            cwd: "/",
            argv: &[],
            block_mounts: &[],
            network: None,
        };
        let error = render(&config).expect_err("refused").to_string();
        assert!(error.contains("process.env[0]"), "{error}");
        let env = ["UEE".to_owned()];
        let error = render(&UrunitConfig {
            env: &env,
            ..config.clone()
        })
        .expect_err("not KEY=VALUE")
        .to_string();
        assert!(error.contains("KEY=VALUE"), "{error}");
        let argv = [arg(1, "a\nARV:b")];
        let error = render(&UrunitConfig {
            env: &[],
            argv: &argv,
            ..config
        })
        .expect_err("refused")
        .to_string();
        assert!(error.contains("process.args[1]"), "{error}");
    }
}
