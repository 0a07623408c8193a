//! The spec's `linux.seccomp` applied to the VMM, as runc applies it to a container process.
//!
//! The profile is compiled with libseccomp, the library runc uses, so an OCI profile means the
//! same thing here as in a runc container: `SCMP_ACT_KILL` kills the thread, ERRNO and TRACE
//! without `errnoRet` return EPERM, a rule whose action is the default one is dropped, names
//! this libseccomp does not know are skipped, and conditions on a repeated argument index
//! become separate (OR-ed) rules while all others are AND-ed in one rule.
//!
//! Compiling (libseccomp allocates) happens in the shim before the fork; the child only hands
//! the finished BPF program to the kernel with `seccomp(2)`, which is async-signal-safe. The
//! filter goes on last, right before exec and after the uid and capability changes, as in
//! runc: every step before it stays free of the profile, and exec itself must be allowed by it.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::error::SeccompError;
use libseccomp::ScmpSyscall;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use runtime_core::oci::{
    Seccomp, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOperator, Syscall,
};

use crate::error::{Result, ShimError};

/// What a system call gets from ERRNO and TRACE rules that name no `errnoRet` (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// The kernel clamps a larger SECCOMP_RET_ERRNO value to this; refused rather than changed.
const MAX_ERRNO: u32 = 4095;
/// A system call has at most six arguments.
const SYSCALL_ARGUMENTS: usize = 6;
/// The kernel's BPF_MAXINSNS: a longer program is refused by seccomp(2).
const MAX_INSTRUCTIONS: usize = 4096;
/// Above this many rules libseccomp's binary-tree layout is shorter and faster (runc's figure).
const BINARY_TREE_ABOVE: usize = 32;

/// A profile compiled to the BPF program the kernel runs, ready to install in a forked child.
#[derive(Debug)]
pub struct SeccompFilter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    skipped: Vec<String>,
}

impl SeccompFilter {
    /// Compiles the spec's profile. Runs in the shim (allocates); refuses, naming the field and
    /// the value, whatever it cannot honour: SCMP_ACT_NOTIFY (no seccomp agent), a listener, an
    /// argument index past 5, an `errnoRet` out of range or on an action that has none, a name
    /// runtime-spec does not define.
    pub fn compile(seccomp: &Seccomp) -> Result<Self> {
        if let Some(path) = &seccomp.listener_path {
            return Err(ShimError::invalid(
                "linux.seccomp.listenerPath",
                path.display().to_string(),
                "urunc-rs runs no seccomp agent for SCMP_ACT_NOTIFY",
            ));
        }
        let default = action(
            &seccomp.default_action,
            seccomp.default_errno_ret,
            "linux.seccomp.defaultAction",
        )?;
        let mut context = ScmpFilterContext::new(default)
            .map_err(|e| library("create a filter", "linux.seccomp.defaultAction", e))?;
        for (index, arch) in seccomp.architectures.iter().enumerate() {
            let field = format!("linux.seccomp.architectures[{index}]");
            context
                .add_arch(scmp_arch(arch, &field)?)
                .map_err(|e| invalid(&field, arch.name(), e))?;
        }
        let flags = kernel_flags(&seccomp.flags)?;
        let syscalls = &seccomp.syscalls;
        if syscalls.len() > BINARY_TREE_ABOVE {
            if let Err(error) = context.set_ctl_optimize(2) {
                tracing::debug!("seccomp: libseccomp cannot lay out a binary tree: {error}");
            }
        }
        let mut skipped = Vec::new();
        for (index, rule) in syscalls.iter().enumerate() {
            add_rule(&mut context, default, rule, index, &mut skipped)?;
        }
        if !skipped.is_empty() {
            tracing::debug!("seccomp: syscalls unknown to libseccomp skipped: {skipped:?}");
        }
        let program = export(&context)?;
        Ok(SeccompFilter {
            program,
            flags,
            skipped,
        })
    }

    /// Installs the filter on the calling thread. Async-signal-safe (prctl and seccomp on memory
    /// allocated before the fork): meant for the forked VMM child, as its LAST step before exec,
    /// after the namespaces, the cgroup, the root, the ids and the capabilities, because the
    /// profile may forbid the system calls those steps make. Sets no_new_privs first, which the
    /// kernel requires of a process without CAP_SYS_ADMIN.
    pub fn install(&self) -> io::Result<()> {
        let program = libc::sock_fprog {
            // compile() keeps the length within MAX_INSTRUCTIONS.
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: prctl with integer arguments; seccomp reads `program`, which points into
        // self.program, alive for the whole call.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(report(c"urunc-rs: seccomp: set no_new_privs failed\n"));
            }
            let installed = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &program as *const libc::sock_fprog,
            );
            if installed < 0 {
                return Err(report(c"urunc-rs: seccomp: installing the filter failed\n"));
            }
        }
        Ok(())
    }

    /// Makes `command`'s child install the filter just before exec (the tests' children; the
    /// VMM's process installs it itself). Call it after every other `pre_exec` registration:
    /// hooks run in registration order.
    #[cfg(test)]
    pub fn install_last(self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: `install` is async-signal-safe and uses only memory owned by the closure.
        unsafe {
            command.pre_exec(move || self.install());
        }
    }

    /// BPF instructions of the compiled program.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Syscall names of the profile that this libseccomp does not know, left out as runc does.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

fn add_rule(
    context: &mut ScmpFilterContext,
    default: ScmpAction,
    rule: &Syscall,
    index: usize,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let field = format!("linux.seccomp.syscalls[{index}]");
    let rule_action = action(&rule.action, rule.errno_ret, &format!("{field}.action"))?;
    let conditions = rule
        .args
        .iter()
        .enumerate()
        .map(|(at, arg)| condition(arg, &format!("{field}.args[{at}]")))
        .collect::<Result<Vec<_>>>()?;
    // libseccomp refuses a rule that repeats the default action; runc drops it, as here.
    if rule_action == default {
        return Ok(());
    }
    for name in &rule.names {
        if name.is_empty() {
            return Err(ShimError::invalid(
                format!("{field}.names"),
                name,
                "empty syscall name",
            ));
        }
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            skipped.push(name.clone());
            continue;
        };
        let added = if repeats_an_argument(rule) {
            conditions.iter().try_for_each(|condition| {
                context
                    .add_rule_conditional(rule_action, syscall, std::slice::from_ref(condition))
                    .map(drop)
            })
        } else {
            context
                .add_rule_conditional(rule_action, syscall, &conditions)
                .map(drop)
        };
        added.map_err(|e| invalid(&format!("{field}.names"), name, e))?;
    }
    Ok(())
}

/// libseccomp compares each argument once per rule; conditions on one argument are therefore
/// alternatives (runc's reading of such profiles).
fn repeats_an_argument(rule: &Syscall) -> bool {
    let mut seen = [false; SYSCALL_ARGUMENTS];
    rule.args.iter().any(|arg| {
        let repeated = seen[arg.index];
        seen[arg.index] = true;
        repeated
    })
}

fn condition(arg: &SeccompArg, field: &str) -> Result<ScmpArgCompare> {
    let index = arg.index;
    if index >= SYSCALL_ARGUMENTS {
        return Err(ShimError::invalid(
            format!("{field}.index"),
            index.to_string(),
            "a system call has arguments 0 to 5",
        ));
    }
    // OCI's MASKED_EQ: `value` is the mask, `valueTwo` what the masked argument must equal.
    let op = match &arg.op {
        SeccompOperator::NotEqual => ScmpCompareOp::NotEqual,
        SeccompOperator::Less => ScmpCompareOp::Less,
        SeccompOperator::LessOrEqual => ScmpCompareOp::LessOrEqual,
        SeccompOperator::Equal => ScmpCompareOp::Equal,
        SeccompOperator::GreaterOrEqual => ScmpCompareOp::GreaterEqual,
        SeccompOperator::Greater => ScmpCompareOp::Greater,
        SeccompOperator::MaskedEqual => {
            return Ok(ScmpArgCompare::new(
                index as u32,
                ScmpCompareOp::MaskedEqual(arg.value),
                arg.value_two,
            ));
        }
        SeccompOperator::Unknown(name) => {
            return Err(ShimError::invalid(
                format!("{field}.op"),
                name,
                SeccompOperator::unknown_reason(),
            ))
        }
    };
    Ok(ScmpArgCompare::new(index as u32, op, arg.value))
}

fn action(action: &SeccompAction, errno_ret: Option<u32>, field: &str) -> Result<ScmpAction> {
    let no_errno_ret = |scmp: ScmpAction| match errno_ret {
        None => Ok(scmp),
        Some(errno) => Err(ShimError::invalid(
            errno_field(field),
            errno.to_string(),
            format!("{action} returns no errno; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"),
        )),
    };
    match action {
        SeccompAction::Allow => no_errno_ret(ScmpAction::Allow),
        SeccompAction::Log => no_errno_ret(ScmpAction::Log),
        SeccompAction::Trap => no_errno_ret(ScmpAction::Trap),
        SeccompAction::Kill | SeccompAction::KillThread => no_errno_ret(ScmpAction::KillThread),
        SeccompAction::KillProcess => no_errno_ret(ScmpAction::KillProcess),
        SeccompAction::Errno => {
            let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
            if errno > MAX_ERRNO {
                return Err(ShimError::invalid(
                    errno_field(field),
                    errno.to_string(),
                    format!("the kernel returns errno values up to {MAX_ERRNO}"),
                ));
            }
            Ok(ScmpAction::Errno(errno as i32))
        }
        SeccompAction::Trace => {
            let message = errno_ret.unwrap_or(DEFAULT_ERRNO);
            let message = u16::try_from(message).map_err(|_| {
                ShimError::invalid(
                    errno_field(field),
                    message.to_string(),
                    "SCMP_ACT_TRACE passes a 16-bit value to the tracer",
                )
            })?;
            Ok(ScmpAction::Trace(message))
        }
        SeccompAction::Notify => Err(ShimError::invalid(
            field,
            action.name(),
            "urunc-rs runs no seccomp agent to answer notifications",
        )),
        SeccompAction::Unknown(name) => Err(ShimError::invalid(
            field,
            name,
            SeccompAction::unknown_reason(),
        )),
    }
}

/// `…defaultAction` → `…defaultErrnoRet`, `…syscalls[i].action` → `…syscalls[i].errnoRet`.
fn errno_field(action_field: &str) -> String {
    match action_field.strip_suffix("defaultAction") {
        Some(prefix) => format!("{prefix}defaultErrnoRet"),
        None => format!(
            "{}errnoRet",
            action_field.strip_suffix("action").unwrap_or(action_field)
        ),
    }
}

fn scmp_arch(arch: &SeccompArch, field: &str) -> Result<ScmpArch> {
    Ok(match arch {
        SeccompArch::Native => ScmpArch::Native,
        SeccompArch::X86 => ScmpArch::X86,
        SeccompArch::X86_64 => ScmpArch::X8664,
        SeccompArch::X32 => ScmpArch::X32,
        SeccompArch::Arm => ScmpArch::Arm,
        SeccompArch::Aarch64 => ScmpArch::Aarch64,
        SeccompArch::Mips => ScmpArch::Mips,
        SeccompArch::Mips64 => ScmpArch::Mips64,
        SeccompArch::Mips64n32 => ScmpArch::Mips64N32,
        SeccompArch::Mipsel => ScmpArch::Mipsel,
        SeccompArch::Mipsel64 => ScmpArch::Mipsel64,
        SeccompArch::Mipsel64n32 => ScmpArch::Mipsel64N32,
        SeccompArch::Ppc => ScmpArch::Ppc,
        SeccompArch::Ppc64 => ScmpArch::Ppc64,
        SeccompArch::Ppc64le => ScmpArch::Ppc64Le,
        SeccompArch::S390 => ScmpArch::S390,
        SeccompArch::S390x => ScmpArch::S390X,
        SeccompArch::Parisc => ScmpArch::Parisc,
        SeccompArch::Parisc64 => ScmpArch::Parisc64,
        SeccompArch::Riscv64 => ScmpArch::Riscv64,
        SeccompArch::Loongarch64 => ScmpArch::Loongarch64,
        SeccompArch::Unknown(name) => {
            return Err(ShimError::invalid(
                field,
                name,
                SeccompArch::unknown_reason(),
            ))
        }
    })
}

/// The flags go to seccomp(2) directly: libseccomp's own attributes only act in its loader.
fn kernel_flags(flags: &[SeccompFlag]) -> Result<libc::c_ulong> {
    flags.iter().enumerate().try_fold(0, |all, (index, flag)| {
        let field = || format!("linux.seccomp.flags[{index}]");
        let bit = match flag {
            // The child is single-threaded; synchronising threads is harmless and kept.
            SeccompFlag::Tsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            SeccompFlag::Log => libc::SECCOMP_FILTER_FLAG_LOG,
            SeccompFlag::SpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            SeccompFlag::WaitKillableRecv => {
                return Err(ShimError::invalid(
                    field(),
                    flag.name(),
                    "only meaningful with SCMP_ACT_NOTIFY, which urunc-rs does not support",
                ))
            }
            SeccompFlag::Unknown(name) => {
                return Err(ShimError::invalid(
                    field(),
                    name,
                    SeccompFlag::unknown_reason(),
                ))
            }
        };
        Ok(all | bit)
    })
}

/// libseccomp 2.5 (Debian 12) exports only to a file descriptor: a memfd, read back whole.
fn export(context: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    // SAFETY: memfd_create with a static name; the descriptor is owned right away.
    let fd = unsafe { libc::memfd_create(c"urunc-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(ShimError::io(
            "seccomp: create a memfd for the filter",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    context
        .export_bpf(&file)
        .map_err(|e| library("export the filter", "linux.seccomp", e))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| ShimError::io("seccomp: read the exported filter", e))?;
    let size = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % size != 0 {
        return Err(ShimError::io(
            "seccomp: read the exported filter",
            io::Error::other(format!("{} bytes, not whole instructions", bytes.len())),
        ));
    }
    let program: Vec<libc::sock_filter> = bytes
        .chunks_exact(size)
        .map(|insn| libc::sock_filter {
            code: u16::from_ne_bytes([insn[0], insn[1]]),
            jt: insn[2],
            jf: insn[3],
            k: u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]),
        })
        .collect();
    if program.is_empty() || program.len() > MAX_INSTRUCTIONS {
        return Err(ShimError::invalid(
            "linux.seccomp",
            format!("{} BPF instructions", program.len()),
            format!("the kernel takes 1 to {MAX_INSTRUCTIONS} instructions"),
        ));
    }
    Ok(program)
}

fn invalid(field: &str, value: &str, error: SeccompError) -> ShimError {
    ShimError::invalid(field, value, format!("libseccomp: {error}"))
}

fn library(step: &str, field: &str, error: SeccompError) -> ShimError {
    ShimError::io(
        format!("seccomp: {step} ({field})"),
        io::Error::other(error.to_string()),
    )
}

/// Writes a fixed line to the child's stderr (the container's) and returns the errno.
fn report(message: &std::ffi::CStr) -> io::Error {
    let error = io::Error::last_os_error();
    let bytes = message.to_bytes();
    // SAFETY: write(2) from a static buffer; a failed diagnostic cannot be reported.
    unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
    error
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use runtime_core::oci::{Process, Seccomp};
    use tokio::sync::oneshot;

    use super::SeccompFilter;
    use crate::confine::test_reaper::{self, find_program, is_root};
    use crate::confine::{Confinement, GuestFiles};
    use crate::reaper::ExitCode;

    /// containerd's `DefaultProfile` for amd64 with Docker's default capabilities (so
    /// `chroot` allowed, no CAP_SYS_ADMIN: `clone` without namespace flags, `clone3` ENOSYS).
    const CONTAINERD_DEFAULT: &str = include_str!(
        "../../../runtime-core/src/oci/testdata/containerd_default_seccomp_amd64.json"
    );
    const UNKNOWN_SYSCALL: &str = "urunc_no_such_syscall";

    fn containerd_default_profile() -> Seccomp {
        serde_json::from_str(CONTAINERD_DEFAULT).expect("containerd's default profile")
    }

    /// EBADFD: an errno nothing else in the test would produce.
    const CHOSEN_ERRNO: u32 = 77;

    fn profile(json: serde_json::Value) -> Seccomp {
        serde_json::from_value(json).expect("a valid OCI seccomp profile")
    }

    fn mkdir_denied() -> Seccomp {
        profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{
                "names": ["mkdir", "mkdirat", UNKNOWN_SYSCALL],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": CHOSEN_ERRNO
            }]
        }))
    }

    fn refusal(json: serde_json::Value) -> String {
        SeccompFilter::compile(&profile(json))
            .expect_err("the profile must be refused")
            .to_string()
    }

    fn seccomp_mode(pid: u32) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("Seccomp:"))
            .expect("a Seccomp line")
            .trim()
            .to_string()
    }

    /// Spawns `command` (stdin and stdout piped) with `filter` installed before exec, through
    /// the tests' shared reaper. `spawn` returns once exec succeeded, so the filter is on.
    fn spawn_filtered(
        mut command: Command,
        filter: SeccompFilter,
    ) -> (Child, oneshot::Receiver<ExitCode>) {
        filter.install_last(piped(&mut command));
        test_reaper::shared()
            .spawn(&mut command)
            .expect("spawn the filtered program")
    }

    fn piped(command: &mut Command) -> &mut Command {
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
    }

    /// Closes the child's stdin (its cue to end), collects its stdout and its exit code.
    async fn finish(mut child: Child, exit: oneshot::Receiver<ExitCode>) -> (ExitCode, String) {
        drop(child.stdin.take());
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = tokio::task::spawn_blocking(move || {
            let mut output = String::new();
            stdout.read_to_string(&mut output).map(|_| output)
        });
        let finished = async {
            let output = reader.await.expect("reader thread").expect("read stdout");
            (exit.await.expect("the reaper delivers the exit"), output)
        };
        match tokio::time::timeout(Duration::from_secs(60), finished).await {
            Ok(result) => result,
            Err(_) => {
                let pid = Pid::from_raw(child.id() as i32);
                if let Err(error) = kill(pid, Signal::SIGKILL) {
                    eprintln!("cannot kill the filtered program {pid}: {error}");
                }
                panic!("the filtered program did not end in time");
            }
        }
    }

    fn python() -> Option<std::path::PathBuf> {
        let found = find_program("python3");
        if found.is_none() {
            skipped!("SKIPPED: python3 is not installed (the probe runs in it)");
        }
        found
    }

    #[tokio::test]
    async fn an_errno_rule_returns_exactly_its_errno_in_a_filtered_child() {
        let Some(python) = python() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("denied");
        let filter = SeccompFilter::compile(&mkdir_denied()).expect("compile");
        let mut command = Command::new(python);
        command.arg("-c").arg(
            "import os, sys\n\
             try:\n    os.mkdir(sys.argv[1]); print('created')\n\
             except OSError as e:\n    print(e.errno)\n\
             sys.stdout.flush(); sys.stdin.read()\n",
        );
        command.arg(&target);
        let (child, exit) = spawn_filtered(command, filter);
        assert_eq!(
            seccomp_mode(child.id()),
            "2",
            "the child runs under a filter"
        );
        let (code, output) = finish(child, exit).await;
        assert_eq!(code, 0, "the probe ends cleanly: {output}");
        assert_eq!(output.trim(), CHOSEN_ERRNO.to_string());
        assert!(!target.exists(), "mkdir was not carried out");
    }

    #[test]
    fn unknown_syscall_names_are_skipped_as_runc_does() {
        let filter = SeccompFilter::compile(&mkdir_denied()).expect("compile");
        assert_eq!(filter.skipped(), [UNKNOWN_SYSCALL.to_string()]);
        assert!(filter.instructions() > 0);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_naming_field_and_value() {
        let notify = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(
            notify.contains("linux.seccomp.syscalls[0].action")
                && notify.contains("SCMP_ACT_NOTIFY"),
            "{notify}"
        );
        let default_notify = refusal(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(
            default_notify.contains("linux.seccomp.defaultAction")
                && default_notify.contains("SCMP_ACT_NOTIFY"),
            "{default_notify}"
        );
        let listener = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"
        }));
        assert!(
            listener.contains("linux.seccomp.listenerPath") && listener.contains("/run/agent.sock")
        );
        let errno_on_allow = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]
        }));
        assert!(
            errno_on_allow.contains("linux.seccomp.syscalls[0].errnoRet")
                && errno_on_allow.contains("\"5\""),
            "{errno_on_allow}"
        );
        let huge_errno = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000
        }));
        assert!(
            huge_errno.contains("linux.seccomp.defaultErrnoRet") && huge_errno.contains("70000"),
            "{huge_errno}"
        );
        let seventh_argument = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert!(
            seventh_argument.contains("linux.seccomp.syscalls[0].args[0].index")
                && seventh_argument.contains("\"6\""),
            "{seventh_argument}"
        );
        let wait_killable = refusal(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        }));
        assert!(
            wait_killable.contains("linux.seccomp.flags")
                && wait_killable.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
            "{wait_killable}"
        );
    }

    /// A name runtime-spec does not define loads (the spec may be runc's to run) but is refused
    /// here, naming the field and the value, wherever it is in the profile.
    #[test]
    fn names_runtime_spec_does_not_define_are_refused_naming_field_and_value() {
        let cases = [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOWED"}),
                "linux.seccomp.defaultAction",
                "SCMP_ACT_ALLOWED",
            ),
            (serde_json::json!({}), "linux.seccomp.defaultAction", "\"\""),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                                   "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
                "linux.seccomp.architectures[1]",
                "SCMP_ARCH_Z80",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                                   "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]}),
                "linux.seccomp.flags[1]",
                "SECCOMP_FILTER_FLAG_FAST",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["mkdir"], "action": "scmp_act_errno"}]}),
                "linux.seccomp.syscalls[1].action",
                "scmp_act_errno",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 1, "value": 1, "op": "SCMP_CMP_APPROX"}]}]}),
                "linux.seccomp.syscalls[0].args[1].op",
                "SCMP_CMP_APPROX",
            ),
        ];
        for (json, field, value) in cases {
            let message = refusal(json);
            assert!(
                message.contains(field) && message.contains(value),
                "{field} {value}: {message}"
            );
        }
    }

    #[test]
    fn containerd_default_profile_compiles() {
        let profile = containerd_default_profile();
        let names: Vec<&String> = profile
            .syscalls
            .iter()
            .flat_map(|rule| &rule.names)
            .collect();
        let filter = SeccompFilter::compile(&profile).expect("compile containerd's profile");
        // At least one comparison per allowed syscall, on three architectures.
        assert!(
            filter.instructions() > names.len(),
            "{} instructions for {} names",
            filter.instructions(),
            names.len()
        );
        for skipped in filter.skipped() {
            assert!(names.contains(&skipped), "{skipped} is not in the profile");
        }
    }

    /// The profile's rules act as containerd means them: the clone3 rule's own errno, the
    /// default errno for what is not listed, argument conditions with LT, EQ, GT.
    #[cfg(target_arch = "x86_64")]
    #[tokio::test]
    async fn containerd_default_profile_is_honoured_in_a_filtered_child() {
        let Some(python) = python() else { return };
        let profile = containerd_default_profile();
        let filter = SeccompFilter::compile(&profile).expect("compile");
        let mut command = Command::new(python);
        command.arg("-c").arg(
            "import ctypes, sys\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             def probe(name, result):\n    print(name, 0 if result >= 0 else ctypes.get_errno())\n\
             U = ctypes.c_ulong\n\
             probe('clone3', libc.syscall(U(435), None, U(0)))\n\
             probe('unshare', libc.syscall(U(272), U(0)))\n\
             probe('personality_query', libc.syscall(U(135), U(0xffffffff)))\n\
             probe('personality_no_aslr', libc.syscall(U(135), U(0x0040000)))\n\
             probe('socket_inet', libc.socket(2, 1, 0))\n\
             probe('socket_vsock', libc.socket(40, 1, 0))\n\
             sys.stdout.flush(); sys.stdin.read()\n",
        );
        let (child, exit) = spawn_filtered(command, filter);
        assert_eq!(seccomp_mode(child.id()), "2");
        let (code, output) = finish(child, exit).await;
        assert_eq!(code, 0, "the probe ends cleanly: {output}");
        let expected = [
            ("clone3", libc::ENOSYS),
            ("unshare", libc::EPERM),
            ("personality_query", 0),
            ("personality_no_aslr", libc::EPERM),
            ("socket_inet", 0),
            ("socket_vsock", libc::EPERM),
        ]
        .map(|(name, errno)| format!("{name} {errno}"))
        .join("\n");
        assert_eq!(output.trim(), expected);
    }

    /// Conditions on one argument are alternatives, on different arguments all must hold;
    /// MASKED_EQ takes `value` as the mask and `valueTwo` as what must remain (OCI's reading).
    #[cfg(target_arch = "x86_64")]
    #[tokio::test]
    async fn argument_conditions_combine_as_in_runc() {
        let Some(python) = python() else { return };
        let filter = SeccompFilter::compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "args": [
                    {"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0x0000008, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78, "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_LE"},
                    {"index": 1, "value": 0, "op": "SCMP_CMP_NE"}]},
                {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 79, "args": [
                    {"index": 0, "value": 0o700, "valueTwo": 0o700, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        })))
        .expect("compile");
        let mut command = Command::new(python);
        command.arg("-c").arg(
            "import ctypes, sys\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             U = ctypes.c_ulong\n\
             def probe(name, nr, *args):\n    \
                 result = libc.syscall(U(nr), *[U(a) for a in args])\n    \
                 print(name, 0 if result >= 0 else ctypes.get_errno())\n\
             probe('personality_no_aslr', 135, 0x0040000)\n\
             probe('personality_mmap_page_zero', 135, 0x0000008)\n\
             probe('personality_query', 135, 0xffffffff)\n\
             probe('getpriority_process_5', 140, 0, 5)\n\
             probe('getpriority_process_self', 140, 0, 0)\n\
             probe('getpriority_user_5', 140, 2, 5)\n\
             probe('umask_0777', 95, 0o777)\n\
             probe('umask_0022', 95, 0o022)\n\
             sys.stdout.flush(); sys.stdin.read()\n",
        );
        let (child, exit) = spawn_filtered(command, filter);
        let (code, output) = finish(child, exit).await;
        assert_eq!(code, 0, "the probe ends cleanly: {output}");
        let results: Vec<(&str, &str)> = output
            .lines()
            .map(|line| line.split_once(' ').expect("name errno"))
            .collect();
        let denied = ["personality_no_aslr", "personality_mmap_page_zero"];
        for (name, errno) in results.iter().copied() {
            let expected = match name {
                _ if denied.contains(&name) => Some("77"),
                "getpriority_process_5" => Some("78"),
                "umask_0777" => Some("79"),
                _ => None,
            };
            match expected {
                Some(expected) => assert_eq!(errno, expected, "{name}: {output}"),
                None => assert!(!["77", "78", "79"].contains(&errno), "{name}: {output}"),
            }
        }
        assert_eq!(results.len(), 8, "{output}");
    }

    /// qemu starts its threads (glibc tries clone3 first and must get ENOSYS to fall back to
    /// clone), sets up an empty machine and quits on the monitor's command; also with its own
    /// `-sandbox` (what runtime-core's qemu driver asks for) stacked on the profile.
    #[tokio::test]
    async fn qemu_runs_under_containerd_default_profile() {
        if find_program("qemu-system-x86_64").is_none() {
            skipped!("SKIPPED: qemu-system-x86_64 is not installed");
            return;
        }
        let profile = containerd_default_profile();
        let sandbox = [
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ];
        for own_sandbox in [&[][..], &sandbox[..]] {
            let filter = SeccompFilter::compile(&profile).expect("compile");
            let mut command = Command::new("qemu-system-x86_64");
            command.args(QEMU_IDLE).args(own_sandbox);
            let (mut child, exit) = spawn_filtered(command, filter);
            assert_eq!(seccomp_mode(child.id()), "2");
            quit_monitor(&mut child);
            let (code, output) = finish(child, exit).await;
            assert_eq!(
                code, 0,
                "qemu {own_sandbox:?} quits cleanly under the profile:\n{output}"
            );
            assert!(output.contains("VM status: paused"), "{output}");
        }
    }

    const QEMU_IDLE: [&str; 10] = [
        "-machine",
        "none",
        "-accel",
        "tcg",
        "-nodefaults",
        "-display",
        "none",
        "-S",
        "-monitor",
        "stdio",
    ];

    fn quit_monitor(child: &mut Child) {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(b"info status\nquit\n")
            .expect("monitor commands");
    }

    /// qemu confined as the shim confines a VMM (own root, uid 1000, no capabilities), with the
    /// filter installed after the confinement: what the shim's Start does.
    fn confined_qemu(dir: &Path) -> (String, Confinement) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let kernel = dir.join("kernel");
        std::fs::write(&kernel, b"unused\n").expect("kernel");
        let new_root = dir.join("vmm-root");
        std::fs::create_dir(&new_root).expect("new root");
        let process: Process = serde_json::from_value(serde_json::json!({
            "user": {"uid": 1000, "gid": 1000}, "cwd": "/", "capabilities": {}
        }))
        .expect("process");
        let guest = GuestFiles {
            kernel: Some(kernel),
            ..GuestFiles::default()
        };
        let (plan, confinement) = crate::confine::prepare_test_qemu(&new_root, &guest, &process);
        (plan.program.display().to_string(), confinement)
    }

    #[tokio::test]
    async fn qemu_runs_confined_then_filtered_and_the_order_matters() {
        if !is_root() {
            skipped!("SKIPPED: confinement needs root (mount namespaces, pivot_root, setuid)");
            return;
        }
        if find_program("qemu-system-x86_64").is_none() {
            skipped!("SKIPPED: qemu-system-x86_64 is not installed");
            return;
        }
        let profile = containerd_default_profile();
        let dir = tempfile::tempdir().expect("tempdir");
        let (program, confinement) = confined_qemu(dir.path());
        let mut command = Command::new(&program);
        piped(command.args(QEMU_IDLE));
        let _root = crate::confine::build_and_install_for_test(confinement, &mut command);
        SeccompFilter::compile(&profile)
            .expect("compile")
            .install_last(&mut command);
        let (mut child, exit) = test_reaper::shared()
            .spawn(&mut command)
            .expect("spawn confined, filtered qemu");
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        assert!(status.contains("Uid:\t1000\t1000\t1000\t1000"), "{status}");
        quit_monitor(&mut child);
        let (code, output) = finish(child, exit).await;
        assert_eq!(code, 0, "confined, filtered qemu quits cleanly:\n{output}");
        assert!(output.contains("VM status: paused"), "{output}");

        // Filtered first, the confinement's own unshare/mount are what the profile forbids.
        let other = tempfile::tempdir().expect("tempdir");
        let (program, confinement) = confined_qemu(other.path());
        let mut command = Command::new(&program);
        piped(command.args(QEMU_IDLE)).stderr(Stdio::null());
        SeccompFilter::compile(&profile)
            .expect("compile")
            .install_last(&mut command);
        let _root = crate::confine::build_and_install_for_test(confinement, &mut command);
        let error = test_reaper::shared()
            .spawn(&mut command)
            .expect_err("the profile forbids confining after it");
        assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
    }
}
