//! The `hermit` kind (urunc's `Hermit.CommandString`, unikernels/hermit_rs.go):
//!
//! ```text
//! ip=<ip>/<prefix> gateway=<gw> -- <args>
//! ```
//!
//! The network parameters when the container has a network, `--` only between them and the
//! application's arguments, which are urunc's (`process.args`, else the cmdline annotation).
//! urunc joins the arguments with spaces; Hermit splits them on spaces again, so an argument
//! that is not one word is refused here rather than split. Hermit boots on qemu only (`-M pc`,
//! x86_64), from its image and at most an initrd: urunc gives it no block device.

use super::words::bare_word;
use super::GuestContext;
use crate::error::CoreError;

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let mut parts = Vec::new();
    if let Some(net) = ctx.network {
        parts.push(format!("ip={}/{}", net.ipv4, net.prefix_len));
        if let Some(gateway) = net.gateway {
            parts.push(format!("gateway={gateway}"));
        }
    }
    let args = ctx
        .args
        .iter()
        .map(|arg| bare_word(&arg.field, &arg.value))
        .collect::<Result<Vec<_>, _>>()?;
    if !parts.is_empty() && !args.is_empty() {
        parts.push("--".to_owned());
    }
    parts.extend(args);
    Ok(parts.join(" "))
}
