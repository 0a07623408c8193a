//! The qemu flags every directly booted test guest shares: a microvm
//! machine under TCG (/dev/kvm here runs guests at emulation speed anyway),
//! console on stdio, no firmware defaults, no reboot on guest exit.

/// The qemu argv (after the program name) up to and including `-kernel`,
/// for a guest with `memory_mib` MiB of RAM; the kernel path comes next.
pub fn microvm_tcg_args(memory_mib: u32) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "stdio",
        "-no-reboot",
        "-M",
        "microvm",
        "-accel",
        "tcg",
        "-m",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.push(memory_mib.to_string());
    args.push("-kernel".into());
    args
}
