//! Node-wide mode (`URUNC_RS_SHIM_GROUP=node` in containerd's environment): one shim serves
//! every container of a containerd namespace, a netns worker per pod namespace. urunc #587's
//! loop in four pods at once; a SIGKILL of the one shim with unikernels in four pods, cleaned
//! by containerd's `delete`s; invariant 1 with eight pods (every non-worker thread in the host
//! netns, each worker in its own pod's).

mod shim_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd_with, ctr, ctr_ok, eventually,
    import_pvh_unikernel, run_detached_in, sandbox_with_ns, shims_of, vmms_mentioning,
};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns};
use urunc_tests::{ContainerdOptions, PrivateContainerd};

const IMAGE: &str = "docker.io/library/pvh-halt-node:test";
/// Rounds per pod of the loop; `URUNC_TEST_ROUNDS` overrides.
const DEFAULT_ROUNDS: usize = 12;

fn node_wide(test: &str) -> Option<PrivateContainerd> {
    containerd_with(
        test,
        &["qemu-system-x86_64", "ip", "tc"],
        ContainerdOptions {
            extra_env: vec![("URUNC_RS_SHIM_GROUP".into(), "node".into())],
            ..ContainerdOptions::default()
        },
    )
}

fn stopped(ctrd: &PrivateContainerd, id: &str) -> bool {
    ctr_ok(ctrd, &["task", "ls"])
        .lines()
        .any(|line| line.starts_with(&format!("{id} ")) && line.contains("STOPPED"))
}

fn kill_and_remove(ctrd: &PrivateContainerd, id: &str) {
    ctr_ok(ctrd, &["task", "kill", "-s", "SIGKILL", id]);
    assert!(
        eventually(Duration::from_secs(30), || stopped(ctrd, id)),
        "{id} did not stop"
    );
    ctr_ok(ctrd, &["task", "delete", id]);
    ctr_ok(ctrd, &["container", "rm", id]);
}

#[test]
fn seed_loop_in_four_pods_at_once_is_served_by_one_shim_and_leaves_nothing() {
    let test = "seed_loop_in_four_pods_at_once_is_served_by_one_shim_and_leaves_nothing";
    let Some(ctrd) = node_wide(test) else {
        return;
    };
    let rounds = std::env::var("URUNC_TEST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "node-ready");
    let host_before = NetSnapshot::take(None).expect("host snapshot");
    let pods: Vec<(SandboxNetns, String)> = (0..4).map(|_| sandbox_with_ns()).collect();
    let done = AtomicBool::new(false);
    let most_shims = AtomicUsize::new(0);

    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                most_shims.fetch_max(shims_of(&ctrd).len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let loops: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(pod, (sandbox, with_ns))| {
                let ctrd = &ctrd;
                scope.spawn(move || {
                    for round in 0..rounds {
                        let id = format!("node-{pod}-{round}");
                        run_detached_in(ctrd, with_ns, IMAGE, &id);
                        let taps = NetSnapshot::take(Some(sandbox.name()))
                            .expect("snapshot")
                            .urunc_taps()
                            .len();
                        assert_eq!(taps, 1, "{id}: the running guest has its tap");
                        kill_and_remove(ctrd, &id);
                        assert_sandbox_clean(sandbox, &format!("{id} after exit"));
                    }
                })
            })
            .collect();
        for handle in loops {
            if let Err(panic) = handle.join() {
                done.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(panic);
            }
        }
        done.store(true, Ordering::Relaxed);
    });

    assert_eq!(
        most_shims.load(Ordering::Relaxed),
        1,
        "four pods at once must be served by one shim"
    );
    for (sandbox, _) in &pods {
        assert_sandbox_clean(sandbox, "after all rounds");
    }
    assert_eq!(
        NetSnapshot::take(None).expect("host snapshot"),
        host_before,
        "host netns changed"
    );
    assert!(
        vmms_mentioning(&ctrd.dir().display().to_string()).is_empty(),
        "VMM left"
    );
    // With no container left, the shim lingers a few seconds (see serve.rs), then goes.
    assert!(
        eventually(Duration::from_secs(20), || shims_of(&ctrd).is_empty()),
        "the node-wide shim did not exit with its last container: {:?}",
        shims_of(&ctrd)
    );
    assert_nothing_left(&ctrd);
    println!("4 pods x {rounds} rounds, one shim");
}

#[test]
fn sigkill_of_the_node_wide_shim_with_four_pods_is_cleaned_by_containerd() {
    let test = "sigkill_of_the_node_wide_shim_with_four_pods_is_cleaned_by_containerd";
    let Some(ctrd) = node_wide(test) else {
        return;
    };
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "node-ready");
    let pods: Vec<(SandboxNetns, String)> = (0..4).map(|_| sandbox_with_ns()).collect();
    for (pod, (_, with_ns)) in pods.iter().enumerate() {
        run_detached_in(&ctrd, with_ns, IMAGE, &format!("crash-{pod}"));
    }
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim for four pods: {shims:?}");
    assert_eq!(
        vmms_mentioning(&ctrd.dir().display().to_string()).len(),
        4,
        "four VMMs run"
    );
    kill(Pid::from_raw(shims[0].0), Signal::SIGKILL).expect("kill -9 the shim");

    // containerd runs `delete` in each bundle: every VMM goes, every tap with it.
    assert!(
        eventually(Duration::from_secs(60), || vmms_mentioning(
            &ctrd.dir().display().to_string()
        )
        .is_empty()),
        "VMMs survived the shim's cleanup: {:?}\n{}",
        vmms_mentioning(&ctrd.dir().display().to_string()),
        ctrd.log_tail(40)
    );
    for pod in 0..4 {
        let id = format!("crash-{pod}");
        let deleted = ctr(&ctrd, &["task", "delete", &id], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&deleted.stderr);
        assert!(
            deleted.status.success() || stderr.contains("not found"),
            "task delete {id}: {stderr}"
        );
        ctr_ok(&ctrd, &["container", "rm", &id]);
    }
    for (sandbox, _) in &pods {
        assert_sandbox_clean(sandbox, "after containerd's cleanup");
    }
    assert_nothing_left(&ctrd);
}

#[test]
fn eight_pods_on_one_shim_keep_every_thread_in_its_namespace() {
    let test = "eight_pods_on_one_shim_keep_every_thread_in_its_namespace";
    let Some(ctrd) = node_wide(test) else {
        return;
    };
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "node-ready");
    let pods: Vec<(SandboxNetns, String)> = (0..8).map(|_| sandbox_with_ns()).collect();
    for (pod, (_, with_ns)) in pods.iter().enumerate() {
        run_detached_in(&ctrd, with_ns, IMAGE, &format!("audit-{pod}"));
    }
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim for eight pods: {shims:?}");
    let pid = shims[0].0;
    let namespace_of = |path: String| {
        std::fs::read_link(&path)
            .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
            .display()
            .to_string()
    };
    let host = namespace_of("/proc/self/ns/net".into());
    let pod_namespaces: Vec<String> = pods
        .iter()
        .map(|(sandbox, _)| format!("net:[{}]", sandbox.inode().expect("inode")))
        .collect();
    let mut workers_per_netns: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list shim threads")
        .flatten()
    {
        let tid = entry.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let netns = namespace_of(format!("/proc/{pid}/task/{tid}/ns/net"));
        if name.starts_with("ns-") {
            assert!(
                pod_namespaces.contains(&netns),
                "worker {name} ({tid}) is in {netns}, no pod's namespace"
            );
            *workers_per_netns.entry(netns).or_default() += 1;
        } else {
            assert_eq!(
                netns, host,
                "shim thread {name} ({tid}) left the host netns"
            );
        }
    }
    assert_eq!(
        workers_per_netns.len(),
        8,
        "a worker per pod: {workers_per_netns:?}"
    );
    assert!(
        workers_per_netns.values().all(|&count| count == 1),
        "one worker per pod namespace: {workers_per_netns:?}"
    );
    for pod in 0..8 {
        kill_and_remove(&ctrd, &format!("audit-{pod}"));
    }
    for (sandbox, _) in &pods {
        assert_sandbox_clean(sandbox, "after the eight pods");
    }
    assert!(
        eventually(Duration::from_secs(20), || shims_of(&ctrd).is_empty()),
        "the node-wide shim did not exit with its last container"
    );
    assert_nothing_left(&ctrd);
}

/// containerd stops reading a bundle's log FIFO when its task is deleted: the shim's lines
/// about the containers left must reach containerd's log through their own FIFOs.
#[test]
fn the_node_wide_shim_still_logs_after_the_container_that_started_it_is_gone() {
    let test = "the_node_wide_shim_still_logs_after_the_container_that_started_it_is_gone";
    let Some(ctrd) = node_wide(test) else {
        return;
    };
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "node-ready");
    let (first_pod, first_ns) = sandbox_with_ns();
    let (second_pod, second_ns) = sandbox_with_ns();
    run_detached_in(&ctrd, &first_ns, IMAGE, "log-first");
    run_detached_in(&ctrd, &second_ns, IMAGE, "log-second");
    kill_and_remove(&ctrd, "log-first");
    kill_and_remove(&ctrd, "log-second");

    let kill_of_second = |log: &str| {
        log.lines()
            .any(|line| line.contains("Kill") && line.contains("id=log-second"))
    };
    assert!(
        eventually(Duration::from_secs(10), || kill_of_second(
            &std::fs::read_to_string(ctrd.log_path()).unwrap_or_default()
        )),
        "the shim's Kill of log-second, after log-first was deleted, is not in containerd's log:\n{}",
        ctrd.log_tail(40)
    );
    assert_sandbox_clean(&first_pod, "after both containers");
    assert_sandbox_clean(&second_pod, "after both containers");
    assert_nothing_left(&ctrd);
}

/// A Create logs its phases before it finishes: they must go to the FIFO containerd opened for
/// that container's bundle, not to the one of a container deleted before it (which containerd
/// no longer reads). Containers one after the other in one node-wide shim, none kept.
#[test]
fn each_create_in_a_node_wide_shim_reaches_containerd_s_log_after_earlier_deletes() {
    let test = "each_create_in_a_node_wide_shim_reaches_containerd_s_log_after_earlier_deletes";
    let Some(ctrd) = node_wide(test) else {
        return;
    };
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "node-ready");
    let (pod, ns) = sandbox_with_ns();
    let ids: Vec<String> = (0..4).map(|round| format!("seq-log{round}")).collect();
    let mut serving = Vec::new();
    for id in &ids {
        run_detached_in(&ctrd, &ns, IMAGE, id);
        serving.push(
            shims_of(&ctrd)
                .iter()
                .map(|(pid, _)| *pid)
                .collect::<Vec<_>>(),
        );
        kill_and_remove(&ctrd, id);
    }
    assert!(
        serving.windows(2).all(|w| w[0] == w[1]) && serving[0].len() == 1,
        "one shim did not serve every round, so earlier deletes were not exercised: {serving:?}"
    );

    let create_line_of = |log: &str, id: &str| {
        log.lines()
            .any(|line| line.contains("Create phases") && line.contains(&format!("id={id} ")))
    };
    for id in &ids {
        assert!(
            eventually(Duration::from_secs(10), || create_line_of(
                &std::fs::read_to_string(ctrd.log_path()).unwrap_or_default(),
                id
            )),
            "the shim's Create phases line of {id} is not in containerd's log:\n{}",
            ctrd.log_tail(60)
        );
    }
    assert_sandbox_clean(&pod, "after the containers one after the other");
    assert_nothing_left(&ctrd);
}
