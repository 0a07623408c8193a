//! Two Creates of one id at once: exactly one wins, and the loser touches nothing of it.

use std::path::Path;

use super::*;
use crate::confine::test_reaper;
use crate::error::ShimError;

/// A bundle of a linux-on-qemu unikernel without network whose `createRuntime` hook sleeps,
/// so the first Create is still in flight when the second one arrives.
fn slow_bundle(dir: &Path) {
    std::fs::create_dir_all(dir.join("rootfs/unikernel")).expect("rootfs");
    std::fs::write(dir.join("rootfs/unikernel/kernel"), b"never booted").expect("kernel");
    let config = serde_json::json!({
        "ociVersion": "1.1.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["/app"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/unikernel/kernel",
        },
        "hooks": {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "0.3"]}]},
        "linux": {"namespaces": [{"type": "mount"}]},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
}

fn no_stdio() -> StdioPaths {
    StdioPaths {
        stdin: String::new(),
        stdout: String::new(),
        stderr: String::new(),
        terminal: false,
    }
}

#[tokio::test]
async fn two_concurrent_creates_of_one_id_exactly_one_wins() {
    if !nix::unistd::Uid::effective().is_root() {
        skipped!("SKIPPED: Create writes the shim's state under /run and chowns (needs root)");
        return;
    }
    if test_reaper::find_program("qemu-system-x86_64").is_none() {
        skipped!("SKIPPED: qemu-system-x86_64 is not installed (the VMM is planned at Create)");
        return;
    }
    let namespace = format!("create-race-{}", std::process::id());
    let (events, _topics) = EventSender::for_tests();
    let service = TaskService::new(
        ServiceConfig {
            namespace: namespace.clone(),
        },
        test_reaper::shared(),
        events,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    slow_bundle(dir.path());
    let bundle = dir.path().to_path_buf();
    let create_twin = || {
        service.create_container(
            "twin",
            bundle.clone(),
            Vec::new(),
            no_stdio(),
            Default::default(),
        )
    };
    let (first, second, counted) = tokio::join!(
        create_twin(),
        create_twin(),
        // While the winner's Create is in flight the shim is not idle (Shutdown must wait).
        async { service.container_count() },
    );
    let outcomes = [first, second];
    let state_dir = Path::new(crate::state::STATE_ROOT)
        .join(&namespace)
        .join("twin");
    let state_kept = state_dir.join("state.json").is_file();
    // Everything is undone before anything is asserted, so a failure leaves nothing either.
    let mut teardowns = Vec::new();
    for container in outcomes.iter().filter_map(|o| o.as_ref().ok()) {
        teardowns.push(container.teardown().await);
    }
    let _ = std::fs::remove_dir(Path::new(crate::state::STATE_ROOT).join(&namespace));

    let refused: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        teardowns.len(),
        1,
        "winners: {}, refusals: {refused:?}",
        teardowns.len()
    );
    assert!(
        matches!(
            outcomes.iter().find_map(|o| o.as_ref().err()),
            Some(ShimError::AlreadyExists { id }) if id == "twin"
        ),
        "{refused:?}"
    );
    for teardown in teardowns {
        teardown.expect("teardown of the winner");
    }
    assert_eq!(counted, 1, "a Create in flight is not counted");
    assert!(
        state_kept,
        "the loser removed the winner's state in {}",
        state_dir.display()
    );
}
