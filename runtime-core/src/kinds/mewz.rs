//! The `mewz` kind (urunc's `Mewz.CommandString`): `ip=<ip>/<prefix>
//! gateway=<gw>`. Mewz takes nothing else: urunc ignores the arguments and
//! so do we. Without a network nothing is written (urunc writes `ip=/24`).

use super::GuestContext;

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> String {
    let Some(net) = ctx.network else {
        return String::new();
    };
    let gateway = net.gateway.map(|g| g.to_string()).unwrap_or_default();
    format!("ip={}/{} gateway={}", net.ipv4, net.prefix_len, gateway)
}
