//! containerd-shim-urunc-v2: containerd's shim v2 contract for urunc-rs.
//!
//! containerd runs this binary three ways: `start` (spawn or reuse the serving daemon and print
//! its address), `delete` (clean up after a dead shim from persisted state) and, through `start`,
//! the serving daemon itself. See `contract/`. An operator runs `check` (see `check`).

/// A unit test that cannot run here says so on stderr, which libtest does not capture (a
/// captured `println!` would make the skip a silent pass in CI's log).
#[cfg(test)]
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Best effort: a test log that cannot be written has nowhere to report to.
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
mod logging;
mod mounts;
mod node_config;
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
    let outcome = match flags.action.as_str() {
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
            eprintln!("containerd-shim-urunc-v2 {}: {error}", flags.action);
            tracing::error!(%error, action = %flags.action, "shim action failed");
            ExitCode::FAILURE
        }
    }
}
