//! The `rumprun` kind: rumprun reads a JSON document as its command line
//! (urunc's `Rumprun.CommandString`): `{"cmdline": ..., "net": {...},
//! "blk": {...}}`, with `net` left out when the container has no network.
//!
//! Two urunc quirks are kept on purpose, because rumprun images were built
//! against them: the netmask is `"1"` (a /1, so that NetBSD accepts a gateway
//! outside eth0's subnet, urunc's `SubnetMask125`), and the `blk` section is
//! always present (rumprun skips a block device that does not exist).

use serde::Serialize;

use super::words::bare_word;
use super::GuestContext;
use crate::error::CoreError;

#[derive(Serialize)]
struct RumprunConfig {
    cmdline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<RumprunNet>,
    blk: RumprunBlk,
}

#[derive(Serialize)]
struct RumprunNet {
    #[serde(rename = "if")]
    interface: &'static str,
    cloner: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    method: &'static str,
    addr: String,
    mask: &'static str,
    gw: String,
}

#[derive(Serialize)]
struct RumprunBlk {
    source: &'static str,
    path: &'static str,
    fstype: &'static str,
    mountpoint: &'static str,
}

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let words = ctx
        .args
        .iter()
        .map(|arg| bare_word(&arg.field, &arg.value))
        .collect::<Result<Vec<_>, _>>()?;
    let config = RumprunConfig {
        cmdline: words.join(" "),
        net: ctx.network.map(|net| RumprunNet {
            interface: "ukvmif0",
            cloner: "True",
            kind: "inet",
            method: "static",
            addr: net.ipv4.to_string(),
            mask: "1",
            gw: net.gateway.map(|g| g.to_string()).unwrap_or_default(),
        }),
        blk: RumprunBlk {
            source: "etfs",
            path: "/dev/ld0a",
            fstype: "blk",
            mountpoint: "/data",
        },
    };
    serde_json::to_string(&config)
        .map_err(|e| CoreError::invalid("rumprun command line", &config.cmdline, e.to_string()))
}
