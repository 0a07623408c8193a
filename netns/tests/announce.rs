//! `NetnsPool::attach_announcing`: the guest's side of an attach is sent before the record
//! is persisted and the tap made, it is the attach's own, and a failure after it still
//! leaves nothing; without eth0 nothing is announced.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use netns::{AttachOutcome, AttachRequest, GuestAttachment, NetnsError, NetnsPool, NetworkMode};
use tokio::sync::oneshot;
use urunc_tests::sandbox::{run, SandboxNetns};

/// What the persist step saw: the announcement already received, and whether the tap existed.
type SeenAtPersist = Arc<Mutex<Option<(Option<GuestAttachment>, bool)>>>;

/// A request whose persist step takes the announcement's receiver, so it sees whether the
/// guest was announced before the record was written; `fail` makes the write fail.
fn request_seeing(
    sandbox: &SandboxNetns,
    announced: oneshot::Receiver<GuestAttachment>,
    fail: bool,
) -> (AttachRequest, SeenAtPersist) {
    let seen = SeenAtPersist::default();
    let record_seen = seen.clone();
    let netns = sandbox.name().to_string();
    let mut announced = announced;
    let request = AttachRequest {
        container_id: "announced".into(),
        owner_uid: 0,
        owner_gid: 0,
        persist: Box::new(move |record| {
            let tap_existed = run("ip", &["-n", &netns, "link", "show", &record.tap]).is_ok();
            *record_seen.lock().unwrap() = Some((announced.try_recv().ok(), tap_existed));
            if fail {
                return Err(std::io::Error::other("disk full"));
            }
            Ok(())
        }),
    };
    (request, seen)
}

#[test]
fn the_guest_is_announced_before_the_record_and_the_tap_in_both_modes() {
    if !require_root("the_guest_is_announced_before_the_record_and_the_tap_in_both_modes") {
        return;
    }
    for mode in [NetworkMode::Redirect, NetworkMode::StaticNat] {
        let sandbox = SandboxNetns::create().unwrap();
        let pool = NetnsPool::new();
        let (announce, announced) = oneshot::channel();
        let (request, seen) = request_seeing(&sandbox, announced, false);
        let outcome = runtime()
            .block_on(pool.attach_announcing(&sandbox.path(), request, mode, announce))
            .unwrap();
        let AttachOutcome::Attached { record, guest } = outcome else {
            panic!("{mode:?}: no network in a sandbox with eth0");
        };
        let (at_persist, tap_existed) = seen.lock().unwrap().clone().expect("persisted");
        assert_eq!(
            at_persist.as_ref(),
            Some(&guest),
            "{mode:?}: not announced before the record, or not the attach's guest"
        );
        assert!(
            !tap_existed,
            "{mode:?}: the tap existed when the record was written"
        );
        runtime().block_on(pool.detach(&record)).unwrap();
        assert_sandbox_clean(&sandbox);
        assert_eq!(pool.live_workers(), 0);
    }
}

#[test]
fn a_failure_after_the_announcement_is_the_attach_s_error_and_leaves_nothing() {
    if !require_root("a_failure_after_the_announcement_is_the_attach_s_error_and_leaves_nothing") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    let pool = NetnsPool::new();
    let (announce, announced) = oneshot::channel();
    let (request, seen) = request_seeing(&sandbox, announced, true);
    let error = runtime()
        .block_on(pool.attach_announcing(&sandbox.path(), request, NetworkMode::Redirect, announce))
        .unwrap_err();
    assert!(matches!(error, NetnsError::Persist { .. }), "{error}");
    let (at_persist, _) = seen.lock().unwrap().clone().expect("persist ran");
    assert!(at_persist.is_some(), "the guest was not announced first");
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_eq!(pool.live_workers(), 0);
}

#[test]
fn a_namespace_without_eth0_announces_nothing() {
    if !require_root("a_namespace_without_eth0_announces_nothing") {
        return;
    }
    let sandbox = SandboxNetns::create_bare().unwrap();
    let pool = NetnsPool::new();
    let (announce, mut announced) = oneshot::channel();
    let outcome = runtime()
        .block_on(pool.attach_announcing(
            &sandbox.path(),
            request("offline"),
            NetworkMode::Redirect,
            announce,
        ))
        .unwrap();
    assert_eq!(outcome, AttachOutcome::NoNetwork);
    assert!(
        matches!(
            announced.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ),
        "something was announced for a namespace without eth0"
    );
    assert_eq!(pool.live_workers(), 0);
}
