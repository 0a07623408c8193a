//! config.json as containerd and CRI write it, and the hook state as runtime-spec defines it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

/// A CRI container of a pod (containerd 1.6's shape), with a hook and a short seccomp profile.
const CRI_CONFIG: &str = include_str!("testdata/cri_container_config.json");
/// containerd's `DefaultProfile` for amd64, as CRI writes it for `RuntimeDefault`.
const CONTAINERD_DEFAULT_SECCOMP: &str =
    include_str!("testdata/containerd_default_seccomp_amd64.json");

fn spec(json: &str) -> Spec {
    Spec::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json} must load: {e}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_cri_container_config_loads_with_its_values() {
    let spec = spec(CRI_CONFIG);
    assert_eq!(spec.oci_version, "1.0.2-dev");
    assert_eq!(
        spec.root.as_ref().map(|r| r.path.as_path()),
        Some(Path::new("rootfs"))
    );

    let process = spec.process.as_ref().expect("process");
    assert_eq!(
        process.user,
        User {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![1000, 2000]
        }
    );
    assert_eq!(
        process.args,
        strings(&["/unikernel/nginx", "-c", "/etc/nginx.conf"])
    );
    assert_eq!(process.env.len(), 5);
    assert_eq!(process.env[1], "HOSTNAME=web-7c9d6bb8f-x2x8q");
    let caps = &process.capabilities;
    assert_eq!(caps.bounding.len(), 14);
    assert_eq!(caps.effective, caps.bounding);
    assert_eq!(caps.permitted, caps.bounding);
    assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
    assert!(caps.bounding.iter().all(|c| capability_number(c).is_some()));
    assert_eq!(
        process.rlimits,
        [Rlimit {
            kind: RlimitType::Nofile,
            soft: 1024,
            hard: 1024
        }]
    );

    assert_eq!(
        spec.hooks.create_runtime,
        [Hook {
            path: "/usr/libexec/oci/hooks.d/gpu-hook".into(),
            args: strings(&["gpu-hook", "prestart"]),
            env: strings(&["LOG_LEVEL=info"]),
            timeout: Some(10),
        }]
    );
    assert_eq!(
        spec.hooks.poststop,
        [Hook {
            path: "/usr/local/bin/audit-stop".into(),
            ..Hook::default()
        }]
    );
    assert!(spec.hooks.prestart.is_empty() && spec.hooks.poststart.is_empty());
    assert!(!spec.hooks.is_empty());

    assert_eq!(spec.annotations.len(), 9);
    assert_eq!(
        spec.annotations
            .get(crate::knative::CRI_CONTAINER_NAME)
            .map(String::as_str),
        Some("web")
    );

    let linux = &spec.linux;
    let namespaces: Vec<(&NamespaceType, Option<&Path>)> = linux
        .namespaces
        .iter()
        .map(|ns| (&ns.kind, ns.path.as_deref()))
        .collect();
    assert_eq!(
        namespaces,
        [
            (&NamespaceType::Pid, None),
            (&NamespaceType::Ipc, Some(Path::new("/proc/4242/ns/ipc"))),
            (&NamespaceType::Uts, Some(Path::new("/proc/4242/ns/uts"))),
            (&NamespaceType::Mount, None),
            (
                &NamespaceType::Network,
                Some(Path::new(
                    "/var/run/netns/cni-6e0b8c2d-1f3a-4b5c-9d7e-0f1a2b3c4d5e"
                ))
            ),
        ]
    );
    assert_eq!(linux.resources.memory.limit, Some(268_435_456));
    assert_eq!(
        linux.resources.cpu,
        Cpu {
            quota: Some(150_000),
            period: Some(100_000),
            cpus: None
        }
    );
    assert!(linux.cgroups_path.as_deref().is_some_and(|p| p
        .starts_with("kubepods-burstable-pod4c7f5e57_")
        && p.contains(":cri-containerd:")));

    let seccomp = linux.seccomp.as_ref().expect("seccomp");
    assert_eq!(seccomp.default_action, SeccompAction::Errno);
    assert_eq!(seccomp.default_errno_ret, None);
    assert_eq!(
        seccomp.architectures,
        [SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32]
    );
    assert!(seccomp.flags.is_empty() && seccomp.listener_path.is_none());
    assert_eq!(seccomp.syscalls.len(), 6);
    assert_eq!(
        seccomp.syscalls[3],
        Syscall {
            names: strings(&["clone"]),
            action: SeccompAction::Allow,
            errno_ret: None,
            args: vec![SeccompArg {
                index: 0,
                value: 2_114_060_288,
                value_two: 0,
                op: SeccompOperator::MaskedEqual
            }],
        }
    );
    assert_eq!(seccomp.syscalls[4].action, SeccompAction::Errno);
    assert_eq!(seccomp.syscalls[4].errno_ret, Some(38));
    assert_eq!(seccomp.syscalls[5].args[0].op, SeccompOperator::NotEqual);
}

#[test]
fn containerd_default_seccomp_profile_loads_with_only_known_names() {
    let profile: Seccomp =
        serde_json::from_str(CONTAINERD_DEFAULT_SECCOMP).expect("containerd's profile");
    assert_eq!(profile.default_action, SeccompAction::Errno);
    assert_eq!(
        profile.architectures,
        [SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32]
    );
    assert_eq!(profile.syscalls.len(), 14);
    let names: usize = profile.syscalls.iter().map(|rule| rule.names.len()).sum();
    assert_eq!(names, 379);
    for rule in &profile.syscalls {
        assert!(
            !matches!(rule.action, SeccompAction::Unknown(_)),
            "{rule:?}"
        );
        for arg in &rule.args {
            assert!(!matches!(arg.op, SeccompOperator::Unknown(_)), "{rule:?}");
        }
    }
    let clone3 = profile
        .syscalls
        .iter()
        .find(|rule| rule.names == ["clone3"])
        .expect("the clone3 rule");
    assert_eq!(
        (&clone3.action, clone3.errno_ret),
        (&SeccompAction::Errno, Some(38))
    );
    let socket_ops: Vec<(&SeccompOperator, u64)> = profile
        .syscalls
        .iter()
        .filter(|rule| rule.names == ["socket"])
        .flat_map(|rule| rule.args.iter().map(|a| (&a.op, a.value)))
        .collect();
    assert_eq!(
        socket_ops,
        [
            (&SeccompOperator::Less, 38),
            (&SeccompOperator::Equal, 39),
            (&SeccompOperator::Greater, 40)
        ]
    );

    // As CRI writes it for RuntimeDefault: inside linux.seccomp of a config.json.
    let config = format!(
        r#"{{"ociVersion":"1.0.2-dev","linux":{{"seccomp":{CONTAINERD_DEFAULT_SECCOMP}}}}}"#
    );
    assert_eq!(spec(&config).linux.seccomp, Some(profile));
}

/// Fields this crate does not read, including ones runtime-spec added after 1.0 (and the
/// `execCPUAffinity` that oci-spec checked with a regular expression), change nothing.
#[test]
fn unknown_fields_are_ignored() {
    let plain = spec(
        r#"{"ociVersion":"1.2.0",
            "process":{"user":{"uid":5,"gid":6},"args":["a"],"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","soft":1,"hard":2}]},
            "hooks":{"poststop":[{"path":"/bin/true"}]},
            "linux":{"namespaces":[{"type":"network","path":"/run/netns/x"}],
                     "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}}}"#,
    );
    let decorated = spec(
        r#"{"ociVersion":"1.2.0","hostname":"h","domainname":"d","vm":{"hypervisor":{"path":"/x"}},
            "futureTopLevel":{"anything":[1,2,{"x":null}]},
            "process":{"user":{"uid":5,"gid":6,"umask":18,"username":"u"},"args":["a"],"cwd":"/",
                       "terminal":true,"consoleSize":{"height":24,"width":80},
                       "execCPUAffinity":{"initial":"0-3,7","final":"not-a-cpu-list"},
                       "ioPriority":{"class":"IOPRIO_CLASS_IDLE","priority":7},
                       "scheduler":{"policy":"SCHED_OTHER"},"noNewPrivileges":true,
                       "rlimits":[{"type":"RLIMIT_CORE","soft":1,"hard":2,"future":1}]},
            "hooks":{"poststop":[{"path":"/bin/true","future":"x"}],"futureKind":[{"path":"/bin/false"}]},
            "linux":{"namespaces":[{"type":"network","path":"/run/netns/x","future":true}],
                     "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
                     "memoryPolicy":{"mode":"MPOL_BIND","nodes":"0-1"},"intelRdt":{"closID":"x"},
                     "netDevices":{"eth1":{"name":"eth9"}},"personality":{"domain":"LINUX"},
                     "timeOffsets":{"monotonic":{"secs":1}},"sysctl":{"net.ipv4.ip_forward":"1"},
                     "resources":{"pids":{"limit":10},"rdma":{"mlx":{"hcaHandles":1}}},
                     "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"m",
                                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","future":1,
                                             "args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ","future":1}]}]}}}"#,
    );
    assert_eq!(decorated, plain);
}

/// Absent fields read as Go's zero values, as runc reads them: the shim decides what it needs.
#[test]
fn absent_fields_read_as_zero_values() {
    let empty = spec("{}");
    assert_eq!(empty, Spec::default());
    assert!(empty.process.is_none() && empty.root.is_none() && empty.linux.seccomp.is_none());
    assert!(empty.hooks.is_empty());

    let sparse = spec(
        r#"{"process":{},"linux":{"namespaces":[{}],"seccomp":{"syscalls":[{"args":[{}]}]}}}"#,
    );
    assert_eq!(sparse.process, Some(Process::default()));
    assert_eq!(
        sparse.linux.namespaces[0].kind,
        NamespaceType::Unknown(String::new())
    );
    let seccomp = sparse.linux.seccomp.expect("seccomp");
    assert_eq!(
        seccomp.default_action,
        SeccompAction::Unknown(String::new())
    );
    assert_eq!(
        seccomp.syscalls[0].args[0].op,
        SeccompOperator::Unknown(String::new())
    );
}

/// Go writes a nil slice or map whose field lacks `omitempty` as `null` (runtime-spec's
/// `LinuxSyscall.names` is one): every list and map of ours reads `null` as empty.
#[test]
fn null_lists_and_maps_read_as_empty() {
    let nulls = spec(
        r#"{"annotations":null,
            "process":{"args":null,"env":null,"rlimits":null,
                       "user":{"additionalGids":null},
                       "capabilities":{"bounding":null,"effective":null,"inheritable":null,
                                       "permitted":null,"ambient":null}},
            "hooks":{"prestart":null,"createRuntime":null,"createContainer":null,
                     "startContainer":null,"poststart":null,
                     "poststop":[{"path":"/bin/true","args":null,"env":null}]},
            "linux":{"namespaces":null,
                     "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":null,
                                "flags":null,
                                "syscalls":[{"names":null,"action":"SCMP_ACT_ERRNO",
                                             "args":null}]}}}"#,
    );
    assert!(nulls.annotations.is_empty());
    let process = nulls.process.expect("process");
    assert!(process.args.is_empty() && process.env.is_empty() && process.rlimits.is_empty());
    assert!(process.user.additional_gids.is_empty());
    assert_eq!(process.capabilities, Default::default());
    assert_eq!(nulls.hooks.poststop.len(), 1);
    assert!(nulls.hooks.poststop[0].args.is_empty() && nulls.hooks.poststop[0].env.is_empty());
    assert!(nulls.hooks.prestart.is_empty() && nulls.linux.namespaces.is_empty());
    let seccomp = nulls.linux.seccomp.expect("seccomp");
    assert!(seccomp.architectures.is_empty() && seccomp.flags.is_empty());
    assert!(seccomp.syscalls[0].names.is_empty() && seccomp.syscalls[0].args.is_empty());
}

/// A name missing from runtime-spec's lists loads as `Unknown`, kept as written for the error
/// of the code that acts on it; that error's reason lists the names it expected.
#[test]
fn unknown_names_are_kept_as_written() {
    let spec = spec(
        r#"{"process":{"rlimits":[{"type":"RLIMIT_NOFILES","soft":1,"hard":1}]},
            "linux":{"namespaces":[{"type":"net"},{"type":"network"}],
                     "seccomp":{"defaultAction":"SCMP_ACT_ALLOWED","architectures":["SCMP_ARCH_Z80"],
                                "flags":["SECCOMP_FILTER_FLAG_NEW"],
                                "syscalls":[{"names":["read"],"action":"scmp_act_allow",
                                             "args":[{"index":0,"value":1,"op":"SCMP_CMP_APPROX"}]}]}}}"#,
    );
    let process = spec.process.expect("process");
    assert_eq!(
        process.rlimits[0].kind,
        RlimitType::Unknown("RLIMIT_NOFILES".into())
    );
    assert_eq!(
        spec.linux.namespaces[0].kind,
        NamespaceType::Unknown("net".into())
    );
    assert_eq!(spec.linux.namespaces[1].kind, NamespaceType::Network);
    let seccomp = spec.linux.seccomp.expect("seccomp");
    assert_eq!(
        seccomp.default_action,
        SeccompAction::Unknown("SCMP_ACT_ALLOWED".into())
    );
    assert_eq!(
        seccomp.architectures,
        [SeccompArch::Unknown("SCMP_ARCH_Z80".into())]
    );
    assert_eq!(
        seccomp.flags,
        [SeccompFlag::Unknown("SECCOMP_FILTER_FLAG_NEW".into())]
    );
    // The spellings are exact, as in runc: no case folding.
    assert_eq!(
        seccomp.syscalls[0].action,
        SeccompAction::Unknown("scmp_act_allow".into())
    );
    assert_eq!(
        seccomp.syscalls[0].args[0].op,
        SeccompOperator::Unknown("SCMP_CMP_APPROX".into())
    );
    assert_eq!(seccomp.syscalls[0].args[0].op.name(), "SCMP_CMP_APPROX");

    let reason = NamespaceType::unknown_reason();
    assert_eq!(
        reason,
        "not a namespace type runtime-spec defines (expected one of: pid, network, mount, ipc, uts, user, cgroup, time)"
    );
    assert!(SeccompAction::unknown_reason().contains("SCMP_ACT_KILL_PROCESS"));
    assert!(SeccompArch::unknown_reason().contains("SCMP_ARCH_X86_64"));
    assert!(RlimitType::unknown_reason().contains("RLIMIT_NOFILE"));
}

#[test]
fn every_listed_name_reads_back_as_itself() {
    fn round_trip<T: From<String> + std::fmt::Display + std::fmt::Debug>(
        names: &[&str],
        unknown: fn(&T) -> bool,
    ) {
        for name in names {
            let value = T::from(name.to_string());
            assert!(!unknown(&value), "{name} read as {value:?}");
            assert_eq!(value.to_string(), *name);
        }
    }
    round_trip::<NamespaceType>(NamespaceType::NAMES, |v| {
        matches!(v, NamespaceType::Unknown(_))
    });
    round_trip::<RlimitType>(RlimitType::NAMES, |v| matches!(v, RlimitType::Unknown(_)));
    round_trip::<SeccompAction>(SeccompAction::NAMES, |v| {
        matches!(v, SeccompAction::Unknown(_))
    });
    round_trip::<SeccompArch>(SeccompArch::NAMES, |v| matches!(v, SeccompArch::Unknown(_)));
    round_trip::<SeccompFlag>(SeccompFlag::NAMES, |v| matches!(v, SeccompFlag::Unknown(_)));
    round_trip::<SeccompOperator>(SeccompOperator::NAMES, |v| {
        matches!(v, SeccompOperator::Unknown(_))
    });
}

#[test]
fn values_of_the_wrong_type_fail_the_load() {
    for bad in [
        r#"{"process":{"user":{"uid":"root"}}}"#,
        r#"{"process":{"user":{"uid":-1}}}"#,
        r#"{"linux":{"namespaces":{"type":"pid"}}}"#,
        r#"{"linux":{"seccomp":{"syscalls":[{"names":["read"],"args":[{"index":-1}]}]}}}"#,
        r#"{"annotations":{"a":1}}"#,
        r#"not json"#,
    ] {
        assert!(Spec::from_json(bad.as_bytes()).is_err(), "{bad} loaded");
    }
}

#[test]
fn capability_numbers_are_linuxs() {
    assert_eq!(capability_number("CAP_CHOWN"), Some(0));
    assert_eq!(capability_number("CAP_NET_ADMIN"), Some(12));
    assert_eq!(capability_number("CAP_SYS_ADMIN"), Some(21));
    assert_eq!(capability_number("CAP_CHECKPOINT_RESTORE"), Some(40));
    for not_runtime_spec in [
        "SYS_ADMIN",
        "cap_sys_admin",
        "CAP_CAP_SYS_ADMIN",
        "CAP_NOPE",
        "",
    ] {
        assert_eq!(
            capability_number(not_runtime_spec),
            None,
            "{not_runtime_spec}"
        );
    }
}

/// The state on a hook's stdin, field for field as runtime-spec's `runtime.md#state`.
#[test]
fn hook_state_serializes_as_runtime_spec_says() {
    let state = State {
        oci_version: "1.0.2-dev".into(),
        id: "web".into(),
        status: Status::Running,
        pid: Some(4242),
        bundle: PathBuf::from("/run/containerd/io.containerd.runtime.v2.task/k8s.io/web"),
        annotations: HashMap::from([(crate::knative::CRI_CONTAINER_NAME.into(), "web".into())]),
    };
    assert_eq!(
        serde_json::to_value(&state).expect("state"),
        serde_json::json!({
            "ociVersion": "1.0.2-dev",
            "id": "web",
            "status": "running",
            "pid": 4242,
            "bundle": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/web",
            "annotations": {"io.kubernetes.cri.container-name": "web"},
        })
    );
    let statuses = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Stopped,
    ]
    .map(|s| serde_json::to_value(s).expect("status"));
    assert_eq!(
        statuses,
        ["creating", "created", "running", "stopped"].map(serde_json::Value::from)
    );

    // Before the VMM exists there is no pid; without annotations there is no map.
    let creating = State {
        status: Status::Creating,
        pid: None,
        annotations: HashMap::new(),
        ..state
    };
    assert_eq!(
        serde_json::to_string(&creating).expect("state"),
        r#"{"ociVersion":"1.0.2-dev","id":"web","status":"creating","bundle":"/run/containerd/io.containerd.runtime.v2.task/k8s.io/web"}"#
    );
}
