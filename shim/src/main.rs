//! containerd-shim-urunc-v2: containerd's shim v2 contract for urunc-rs.
//!
//! containerd runs this binary three ways: `start` (spawn or reuse the serving daemon and print
//! its address), `delete` (clean up after a dead shim from persisted state) and, through `start`,
//! the serving daemon itself. See `contract/`. An operator runs `check` (see `check`).

// The one skip helper of the workspace's tests (`skipped!`, `skipped_not_in_ci!`).
#[cfg(test)]
#[macro_use]
extern crate urunc_test_skip;

mod accel_probe;
mod block_rootfs;
mod captured;
mod cgroup;
mod check;
mod confine;
mod console;
mod container;
mod contract;
mod error;
mod events;
mod heap_policy;
mod hooks;
mod host;
mod log_binary;
mod logging;
mod mounts;
mod node_config;
mod proto_time;
mod qmp;
mod reaper;
mod rootfs_file;
mod runc;
mod service;
mod spawn;
mod state;
mod stderr_tee;
mod stdin_pump;
mod stdio;
mod syslog;
mod timestamps;
mod type_url;
mod virtiofsd;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let flags = match containerd_shim::parse(&args) {
        Ok(flags) => flags,
        Err(error) => {
            eprintln!("containerd-shim-urunc-v2: bad arguments: {error}");
            return ExitCode::FAILURE;
        }
    };
    if flags.version {
        // The layout of containerd's own shims' `-v`.
        println!("containerd-shim-urunc-v2:");
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!(
            "  Revision: {}",
            option_env!("URUNC_RS_REVISION").unwrap_or_default()
        );
        println!("  Task API: v2 (containerd 1.6, 1.7, 2.x) and v3 (containerd 2.x)");
        return ExitCode::SUCCESS;
    }
    if flags.action == "check" {
        // Not a containerd action: what this node can run, for its operator.
        return match check::run() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("containerd-shim-urunc-v2 check: {error}");
                ExitCode::from(2)
            }
        };
    }
    // `-info` comes before any action: containerd 2.2+ runs it on its own.
    let action = if flags.info {
        "-info"
    } else {
        flags.action.as_str()
    };
    let outcome = match action {
        "-info" => contract::info::run(),
        "start" => contract::start::run(&flags),
        "delete" => contract::delete::run(&flags),
        "" => contract::serve::run(&flags),
        other => Err(error::ShimError::invalid(
            "action",
            other,
            "expected start, delete, check or none (serve)",
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("containerd-shim-urunc-v2 {action}: {error}");
            tracing::error!(%error, action, "shim action failed");
            ExitCode::FAILURE
        }
    }
}
