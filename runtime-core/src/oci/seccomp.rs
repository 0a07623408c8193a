//! `linux.seccomp` (runtime-spec `config-linux.md#seccomp`), with libseccomp's spellings.

use std::path::PathBuf;

use serde::Deserialize;

use super::names::spec_names;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: SeccompAction,
    pub default_errno_ret: Option<u32>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub architectures: Vec<SeccompArch>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub flags: Vec<SeccompFlag>,
    pub listener_path: Option<PathBuf>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub syscalls: Vec<Syscall>,
}

/// One rule: `action` for the system calls `names` when every condition of `args` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Syscall {
    #[serde(deserialize_with = "super::null_as_empty")]
    pub names: Vec<String>,
    pub action: SeccompAction,
    pub errno_ret: Option<u32>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub args: Vec<SeccompArg>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeccompArg {
    /// The system call's argument, 0 to 5.
    pub index: usize,
    pub value: u64,
    /// Only for `SCMP_CMP_MASKED_EQ`: what the argument masked with `value` must equal.
    pub value_two: u64,
    pub op: SeccompOperator,
}

spec_names! {
    /// `linux.seccomp.defaultAction` and `syscalls[].action`.
    SeccompAction, "seccomp action", {
        Kill = "SCMP_ACT_KILL",
        KillProcess = "SCMP_ACT_KILL_PROCESS",
        KillThread = "SCMP_ACT_KILL_THREAD",
        Trap = "SCMP_ACT_TRAP",
        Errno = "SCMP_ACT_ERRNO",
        Trace = "SCMP_ACT_TRACE",
        Allow = "SCMP_ACT_ALLOW",
        Log = "SCMP_ACT_LOG",
        Notify = "SCMP_ACT_NOTIFY",
    }
}

spec_names! {
    /// `linux.seccomp.architectures[]`: runtime-spec's list, and libseccomp's `SCMP_ARCH_NATIVE`.
    SeccompArch, "seccomp architecture", {
        Native = "SCMP_ARCH_NATIVE",
        X86 = "SCMP_ARCH_X86",
        X86_64 = "SCMP_ARCH_X86_64",
        X32 = "SCMP_ARCH_X32",
        Arm = "SCMP_ARCH_ARM",
        Aarch64 = "SCMP_ARCH_AARCH64",
        Mips = "SCMP_ARCH_MIPS",
        Mips64 = "SCMP_ARCH_MIPS64",
        Mips64n32 = "SCMP_ARCH_MIPS64N32",
        Mipsel = "SCMP_ARCH_MIPSEL",
        Mipsel64 = "SCMP_ARCH_MIPSEL64",
        Mipsel64n32 = "SCMP_ARCH_MIPSEL64N32",
        Ppc = "SCMP_ARCH_PPC",
        Ppc64 = "SCMP_ARCH_PPC64",
        Ppc64le = "SCMP_ARCH_PPC64LE",
        S390 = "SCMP_ARCH_S390",
        S390x = "SCMP_ARCH_S390X",
        Parisc = "SCMP_ARCH_PARISC",
        Parisc64 = "SCMP_ARCH_PARISC64",
        Riscv64 = "SCMP_ARCH_RISCV64",
        Loongarch64 = "SCMP_ARCH_LOONGARCH64",
    }
}

spec_names! {
    /// `linux.seccomp.flags[]`: seccomp(2)'s SECCOMP_SET_MODE_FILTER flags.
    SeccompFlag, "seccomp flag", {
        Tsync = "SECCOMP_FILTER_FLAG_TSYNC",
        Log = "SECCOMP_FILTER_FLAG_LOG",
        SpecAllow = "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        WaitKillableRecv = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
}

spec_names! {
    /// `linux.seccomp.syscalls[].args[].op`.
    SeccompOperator, "seccomp comparison", {
        NotEqual = "SCMP_CMP_NE",
        Less = "SCMP_CMP_LT",
        LessOrEqual = "SCMP_CMP_LE",
        Equal = "SCMP_CMP_EQ",
        GreaterOrEqual = "SCMP_CMP_GE",
        Greater = "SCMP_CMP_GT",
        MaskedEqual = "SCMP_CMP_MASKED_EQ",
    }
}
