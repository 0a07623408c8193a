//! containerd-shim-urunc-v2: containerd's shim v2 contract for urunc-rs.
//!
//! containerd runs this binary three ways: `start` (spawn or reuse the serving daemon and print
//! its address), `delete` (clean up after a dead shim from persisted state) and, through `start`,
//! the serving daemon itself. See `contract/`.

// The one skip helper of the workspace's tests (`skipped!`, `skipped_not_in_ci!`).
#[cfg(test)]
#[macro_use]
extern crate urunc_test_skip;

mod block_rootfs;
mod cgroup;
mod confine;
mod console;
mod container;
mod contract;
mod error;
mod events;
mod heap_policy;
mod hooks;
mod host;
mod logging;
mod mounts;
mod qmp;
mod reaper;
mod rootfs_file;
mod runc;
mod service;
mod spawn;
mod state;
mod stdin_pump;
mod stdio;
mod type_url;

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
        println!("containerd-shim-urunc-v2 {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let outcome = match flags.action.as_str() {
        "start" => contract::start::run(&flags),
        "delete" => contract::delete::run(&flags),
        "" => contract::serve::run(&flags),
        other => Err(error::ShimError::invalid(
            "action",
            other,
            "expected start, delete or none (serve)",
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("containerd-shim-urunc-v2 {}: {error}", flags.action);
            tracing::error!(%error, action = %flags.action, "shim action failed");
            ExitCode::FAILURE
        }
    }
}
