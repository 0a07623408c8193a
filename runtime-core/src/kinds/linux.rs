//! The `linux` kind: a Linux kernel booted as a unikernel.
//!
//! Layout, following urunc's `Linux.CommandString` with our additions marked:
//!
//! ```text
//! panic=-1 console=<dev> [machine params]* [root=/dev/vda rw | root=/dev/ram0 rw |
//! root=fs0 rw rootfstype=9p rootflags=... | root=fs0 rw rootfstype=virtiofs]
//! [ip=<ip>::<gw>:<mask>:urunc:eth0:off] [extra kernel args]* [ENV=value]*
//! [rdinit=|init=<program> [-- <arg>*]]
//! ```
//!
//! * `machine params` (ours): what the VMM's machine needs, e.g. `reboot=t` on
//!   qemu microvm so a guest reboot ends the VMM.
//! * Environment: the kernel hands every `name=value` it does not recognise to
//!   init's environment, which is how urunc passes `process.env`. A kernel or
//!   module parameter would be consumed instead, or worse, change how the
//!   guest boots (`init=`, `root=`, `virtio_net.x=`): names must be POSIX
//!   names with at least one uppercase letter (kernel parameters are all
//!   lowercase, conventional environment names are uppercase). A lowercase
//!   name is refused, never dropped silently.
//! * The program and its arguments: everything after `--` is init's argv.
//!   Arguments with spaces are wrapped in double quotes, which the kernel's
//!   parser strips (urunc used single quotes plus a convention with its
//!   `urunit` init; double quotes give the right argv to any init, urunit
//!   included). A `"` or a control character cannot be represented and is
//!   refused. With no program at all, no `init=` is written and the kernel
//!   uses its defaults (`/init` in an initramfs, `/sbin/init` on a disk),
//!   where urunc refuses to start.
//! * The whole line must fit x86's 2048-byte `COMMAND_LINE_SIZE`, or the
//!   kernel would cut it silently.

use super::words::{quoted_env_entry, quoted_word};
use super::{GuestContext, GuestRootfs};
use crate::error::CoreError;

const COMMAND_LINE_SIZE: usize = 2048;

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let mut params: Vec<String> = vec!["panic=-1".into(), format!("console={}", ctx.console)];
    params.extend(ctx.machine_params.iter().map(|p| p.to_string()));
    match ctx.rootfs {
        GuestRootfs::Block => params.push("root=/dev/vda rw".into()),
        GuestRootfs::Initrd => params.push("root=/dev/ram0 rw".into()),
        GuestRootfs::Shared(fs) => params.push(crate::shared_fs::root_params(fs)),
        GuestRootfs::None => {}
    }
    if let Some(net) = ctx.network {
        let gateway = net.gateway.map(|g| g.to_string()).unwrap_or_default();
        params.push(format!(
            "ip={}::{}:{}:urunc:eth0:off",
            net.ipv4,
            gateway,
            net.netmask()
        ));
    }
    for (i, arg) in ctx.extra_kernel_args.iter().enumerate() {
        params.push(kernel_param(&format!("extra_kernel_args[{i}]"), arg)?);
    }
    for (i, entry) in ctx.env.iter().enumerate() {
        params.push(init_env(&format!("process.env[{i}]"), entry)?);
    }
    if let Some((program, rest)) = ctx.args.split_first() {
        let init_key = if ctx.rootfs == GuestRootfs::Initrd {
            "rdinit"
        } else {
            "init"
        };
        params.push(format!(
            "{init_key}={}",
            init_program(&program.field, &program.value)?
        ));
        if !rest.is_empty() {
            params.push("--".into());
            for arg in rest {
                params.push(quoted_word(&arg.field, &arg.value)?);
            }
        }
    }
    let line = params.join(" ");
    if line.len() > COMMAND_LINE_SIZE {
        return Err(CoreError::OutOfRange {
            field: "guest command line length".into(),
            value: line.len() as i128,
            reason: format!("Linux truncates command lines longer than {COMMAND_LINE_SIZE} bytes"),
        });
    }
    Ok(line)
}

/// A parameter the shim adds: one word, no quotes, not the `--` separator.
fn kernel_param(field: &str, value: &str) -> Result<String, CoreError> {
    let word = quoted_word(field, value)?;
    if word != value || value == "--" {
        return Err(CoreError::invalid(
            field,
            value,
            "a kernel parameter must be one word and not the '--' separator",
        ));
    }
    Ok(word)
}

fn init_env(field: &str, entry: &str) -> Result<String, CoreError> {
    let (key, assignment) = quoted_env_entry(field, entry)?;
    if !key.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(CoreError::invalid(
            field,
            entry,
            "the Linux kernel would consume an all-lowercase name as a kernel parameter \
             instead of passing it to init; use an uppercase name",
        ));
    }
    Ok(assignment)
}

/// `init=` takes exactly one word up to the next space: the program path.
fn init_program(field: &str, value: &str) -> Result<String, CoreError> {
    let word = quoted_word(field, value)?;
    if word != value || !value.starts_with('/') {
        return Err(CoreError::invalid(
            field,
            value,
            "the guest's init program must be an absolute path without spaces",
        ));
    }
    Ok(word)
}
