//! The one way a test of urunc-rs says it cannot run here: `SKIPPED: <reason>` on stderr.
//!
//! libtest captures `println!` and shows it only for failures, which would turn a skip into a
//! silent pass in CI's log; a direct write to stderr is not captured.
//!
//! Two kinds of skip:
//! - [`skipped!`]: something CI installs is missing (root, containerd, runc, qemu, Debian's
//!   kernel, busybox-static, the CNI plugins, iproute2, python3, ...). With
//!   `URUNC_REQUIRE_PRIVILEGED=1` (set by `.ci/run`) this is a test failure instead: on CI such
//!   a skip means the setup is broken, and a green run would hide it.
//! - [`skipped_not_in_ci!`]: something CI does not install (a VMM built from source:
//!   firecracker, cloud-hypervisor, solo5; device-mapper thin pools; another architecture):
//!   always a skip.

use std::fmt::Arguments;
use std::io::Write as _;

/// Set to `1`, every [`skipped!`] fails its test.
pub const REQUIRE_ENV: &str = "URUNC_REQUIRE_PRIVILEGED";

/// Whether skips of what CI installs are failures here.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// A skip of something CI installs: reported, or a panic under `URUNC_REQUIRE_PRIVILEGED=1`.
pub fn missing(reason: Arguments) {
    if required() {
        panic!("{reason} ({REQUIRE_ENV}=1: CI installs this, so the test must not skip)");
    }
    report(reason);
}

/// Writes the skip to stderr.
pub fn report(reason: Arguments) {
    // Best effort: a test log that cannot be written has nowhere to report to.
    let _ = writeln!(std::io::stderr(), "{reason}");
}

/// `skipped!("SKIPPED: {test}: qemu is not installed")`: something CI installs is missing.
#[macro_export]
macro_rules! skipped {
    ($($arg:tt)*) => {
        $crate::missing(format_args!($($arg)*))
    };
}

/// `skipped_not_in_ci!("SKIPPED: {test}: firecracker is not on PATH")`: something CI does not
/// install is missing; never a failure.
#[macro_export]
macro_rules! skipped_not_in_ci {
    ($($arg:tt)*) => {
        $crate::report(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment is the process's: one test reads and writes it.
    #[test]
    fn the_switch_turns_a_skip_of_what_ci_installs_into_a_failure_only() {
        let previous = std::env::var_os(REQUIRE_ENV);
        std::env::set_var(REQUIRE_ENV, "1");
        let strict =
            std::panic::catch_unwind(|| skipped!("(skip helper self-test, not a skip: qemu)"));
        let lenient = std::panic::catch_unwind(|| {
            skipped_not_in_ci!("(skip helper self-test, not a skip: firecracker)")
        });
        std::env::set_var(REQUIRE_ENV, "0");
        let off =
            std::panic::catch_unwind(|| skipped!("(skip helper self-test, not a skip: qemu)"));
        match previous {
            Some(value) => std::env::set_var(REQUIRE_ENV, value),
            None => std::env::remove_var(REQUIRE_ENV),
        }
        assert!(
            strict.is_err(),
            "a skip of what CI installs passed under the switch"
        );
        assert!(lenient.is_ok(), "a skip of what CI lacks failed");
        assert!(off.is_ok(), "a skip failed without the switch");
    }
}
