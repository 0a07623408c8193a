//! The `mirage` kind (urunc's `Mirage.CommandString`):
//! `--ipv4=<ip>/<prefix> --ipv4-gateway=<gw> <args>`. MirageOS splits its
//! command line on spaces, so every argument must be one word. Departure from
//! urunc: the prefix is eth0's, not a fixed `/24`.

use super::words::bare_word;
use super::GuestContext;
use crate::error::CoreError;

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let mut parts = Vec::new();
    if let Some(net) = ctx.network {
        parts.push(format!("--ipv4={}/{}", net.ipv4, net.prefix_len));
        if let Some(gateway) = net.gateway {
            parts.push(format!("--ipv4-gateway={gateway}"));
        }
    }
    for arg in &ctx.args {
        parts.push(bare_word(&arg.field, &arg.value)?);
    }
    Ok(parts.join(" "))
}
