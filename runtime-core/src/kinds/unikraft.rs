//! The `unikraft` kind (urunc's `Unikraft.CommandString`):
//!
//! ```text
//! <app> [env.vars=[ K=V ... ]] <net params> [<vfs param>] -- <args>
//! ```
//!
//! Unikraft changed its network parameters in 0.16.1: from then on one
//! `netdev.ip=<ip>/<prefix>:<gw>:<dns>`, before it three
//! `netdev.ipv4_addr=`, `netdev.ipv4_gw_addr=`, `netdev.ipv4_subnet_mask=`.
//! `unikernelVersion` chooses; like urunc, a missing or unparsable version
//! means the current form. The initrd is mounted as the root by
//! `vfs.fstab=[ "initrd0:/:extract:::" ]` (current) or `vfs.rootfs=initrd`
//! (before). Departures from urunc: the prefix is the real one (urunc writes
//! `/24` whatever eth0's prefix is), and without a network no net parameters
//! are written (urunc writes `netdev.ip=/24::8.8.8.8`). Empty parts are not
//! written (urunc leaves runs of spaces).

use super::words::{quoted_env_entry, quoted_word};
use super::{GuestContext, GuestRootfs};
use crate::error::CoreError;

/// The DNS server urunc hands every Unikraft guest.
const DNS_SERVER: &str = "8.8.8.8";

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let current = uses_current_params(ctx.config.unikernel_version.as_deref());
    let mut parts: Vec<String> = Vec::new();
    let (program, rest) = match ctx.args.split_first() {
        Some((program, rest)) => (Some(program), rest),
        None => (None, &[][..]),
    };
    if let Some(program) = program {
        parts.push(quoted_word(&program.field, &program.value)?);
    }
    if !ctx.env.is_empty() {
        let mut entries = Vec::with_capacity(ctx.env.len());
        for (i, entry) in ctx.env.iter().enumerate() {
            let field = format!("process.env[{i}]");
            entries.push(quoted_env_entry(&field, entry)?.1);
        }
        parts.push(format!("env.vars=[ {} ]", entries.join(" ")));
    }
    if let Some(net) = ctx.network {
        let gateway = net.gateway.map(|g| g.to_string()).unwrap_or_default();
        if current {
            parts.push(format!(
                "netdev.ip={}/{}:{}:{}",
                net.ipv4, net.prefix_len, gateway, DNS_SERVER
            ));
        } else {
            parts.push(format!("netdev.ipv4_addr={}", net.ipv4));
            parts.push(format!("netdev.ipv4_gw_addr={gateway}"));
            parts.push(format!("netdev.ipv4_subnet_mask={}", net.netmask()));
        }
    }
    if ctx.rootfs == GuestRootfs::Initrd {
        parts.push(if current {
            "vfs.fstab=[ \"initrd0:/:extract:::\" ]".into()
        } else {
            "vfs.rootfs=initrd".into()
        });
    }
    parts.push("--".into());
    for arg in rest {
        parts.push(quoted_word(&arg.field, &arg.value)?);
    }
    Ok(parts.join(" "))
}

/// True from Unikraft 0.16.1 on, and when the version is absent or not a
/// version (urunc's fallback).
fn uses_current_params(version: Option<&str>) -> bool {
    version
        .and_then(Version::parse)
        .is_none_or(|v| v >= Version::COMPAT)
}

/// The part of semantic versioning that decides the parameter form: numeric
/// major.minor.patch (missing parts are 0) and whether it is a pre-release,
/// which sorts before the release (as hashicorp/go-version, which urunc uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    numbers: [u64; 3],
    is_release: bool,
}

impl Version {
    const COMPAT: Version = Version {
        numbers: [0, 16, 1],
        is_release: true,
    };

    fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split('+').next()?;
        let (core, pre_release) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut numbers = [0u64; 3];
        for (index, part) in core.split('.').enumerate() {
            *numbers.get_mut(index)? = part.parse().ok()?;
        }
        if pre_release.is_some_and(str::is_empty) {
            return None;
        }
        Some(Version {
            numbers,
            is_release: pre_release.is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_threshold() {
        assert!(uses_current_params(None));
        assert!(uses_current_params(Some("garbage")));
        assert!(uses_current_params(Some("0.16.1")));
        assert!(uses_current_params(Some("v0.17")));
        assert!(uses_current_params(Some("1.0.0")));
        assert!(!uses_current_params(Some("0.16.0")));
        assert!(!uses_current_params(Some("0.16.1-rc1")));
        assert!(!uses_current_params(Some("0.15")));
    }
}
