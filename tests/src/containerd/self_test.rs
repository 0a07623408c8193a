//! The private containerd against the real Debian containerd: it starts,
//! imports images urunc-pack wrote, runs busybox through runc, and leaves
//! nothing behind.

use std::path::PathBuf;

use super::{ContainerdOptions, PrivateContainerd};
use crate::guests::PvhBehaviour;
use crate::host_processes::processes_referring_to;
use crate::images::busybox_image;
use crate::unikernel_images::pvh_image;

fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root to run containerd".into());
    }
    crate::host_tools::which("containerd", "apt-get install containerd")
        .err()
        .map(|error| error.to_string())
}

fn without_shim() -> ContainerdOptions {
    ContainerdOptions {
        urunc_shim: false,
        ..ContainerdOptions::default()
    }
}

#[test]
fn imports_a_pvh_unikernel_image_and_leaves_nothing_behind() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let name = "docker.io/library/urunc-pvh:latest";
    let archive = pvh_image(work.path(), name, PvhBehaviour::HaltForever, "PVH").unwrap();

    let containerd = PrivateContainerd::start_with(without_shim()).unwrap();
    let dir: PathBuf = containerd.dir().to_path_buf();
    containerd.import(&archive).unwrap();
    let images = containerd.ctr_ok(&["images", "ls", "-q"]).unwrap();
    assert!(images.lines().any(|line| line == name), "images: {images}");
    // The layer unpacks: a snapshot-backed container can be made from it.
    containerd
        .ctr_ok(&["containers", "create", name, "pvh-container"])
        .unwrap();
    let info = containerd
        .ctr_ok(&["containers", "info", "pvh-container"])
        .unwrap();
    assert!(info.contains(name), "container info: {info}");

    containerd.stop().unwrap();
    assert!(!dir.exists(), "{dir:?} is still there");
    assert_eq!(processes_referring_to(&dir), Vec::new());
}

#[test]
fn runs_busybox_through_runc() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let name = "docker.io/library/busybox-local:latest";
    let archive = busybox_image(work.path(), name).unwrap();
    let containerd = PrivateContainerd::start_with(without_shim()).unwrap();
    containerd.import(&archive).unwrap();
    let out = containerd
        .ctr(&[
            "run",
            "--rm",
            name,
            "bb-echo",
            "sh",
            "-c",
            "echo hello-from-busybox; exit 3",
        ])
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello-from-busybox",
        "stderr: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        containerd.log_tail(20)
    );
    assert_eq!(out.status.code(), Some(3));
    let namespace = containerd.namespace().to_string();
    let dir = containerd.dir().to_path_buf();
    // A task left running is the teardown's job.
    containerd
        .ctr_ok(&["run", "-d", name, "bb-sleeper", "sleep", "600"])
        .unwrap();
    drop(containerd);
    assert!(!dir.exists(), "{dir:?} is still there");
    assert_eq!(processes_referring_to(&dir), Vec::new());
    let runc_state = std::path::Path::new("/run/containerd/runc").join(namespace);
    assert!(!runc_state.exists(), "{runc_state:?} is still there");
}

#[test]
fn teardown_kills_strays_and_unmounts_what_was_left_in_its_folder() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let containerd = PrivateContainerd::start_with(without_shim()).unwrap();
    let dir = containerd.dir().to_path_buf();
    // What a crashed shim leaves: a process in a bundle and a mount.
    let bundle = dir.join("state/leftover-bundle");
    let mount_point = bundle.join("rootfs");
    std::fs::create_dir_all(&mount_point).unwrap();
    let mut stray = crate::guests::KillOnDrop(
        std::process::Command::new("sleep")
            .arg("600")
            .current_dir(&bundle)
            .spawn()
            .unwrap(),
    );
    crate::command::checked(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "leftover"])
            .arg(&mount_point),
    )
    .unwrap();
    let stray_pid = stray.0.id() as i32;
    assert!(
        processes_referring_to(&dir)
            .iter()
            .any(|(pid, _)| *pid == stray_pid),
        "the stray is found by its cwd"
    );

    containerd.stop().unwrap();
    let status = stray
        .wait_within(std::time::Duration::from_secs(5))
        .unwrap();
    assert!(!status.success(), "the stray was killed: {status}");
    assert_eq!(
        crate::mounts::mounts_under(&dir).unwrap(),
        Vec::<PathBuf>::new()
    );
    assert!(!dir.exists(), "{dir:?} is still there");
}
