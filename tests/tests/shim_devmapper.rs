//! urunc's devmapper path end to end: containerd 1.6's devmapper snapshotter
//! on a thin pool made from loop devices gives the container rootfs as an
//! ext4 thin device; our shim copies the guest's kernel and initrd out of it,
//! unmounts it and boots qemu with it as the guest's `/dev/vda`. The disk's
//! own init prints a file only the image has and the device on `/`. After
//! kill and delete: no VMM, no mount, the thin device closed, no state. The
//! pool and its loop devices are removed whatever happens.
//!
//! Needs a kernel with device-mapper and the thin-pool target; prints SKIPPED
//! with the reason otherwise (this machine's kernel has no device-mapper).

mod shim_support;

use std::time::Duration;

use shim_support::{assert_nothing_left, ctr, ctr_ok, prerequisites, vmms_mentioning, RUNTIME};
use urunc_tests::block_devices::{thin_pools_available, ThinPool};
use urunc_tests::containerd::{ContainerdOptions, PrivateContainerd};
use urunc_tests::guests::block_root::{
    block_root_guest, booted_from_vda_line, rooted_image_archive,
};
use urunc_tests::guests::spawn_with_console;
use urunc_tests::mounts::mounts_under;

const IMAGE: &str = "docker.io/library/linux-block-root:test";
const ID: &str = "dm-linux";

#[test]
fn devmapper_rootfs_boots_as_vda_and_nothing_is_left() {
    let test = "devmapper_rootfs_boots_as_vda_and_nothing_is_left";
    if !prerequisites(
        test,
        &["containerd", "ctr", "runc", "losetup", "qemu-system-x86_64"],
    ) {
        return;
    }
    if let Err(reason) = thin_pools_available() {
        // device-mapper (dmsetup, thin pools in the kernel) is not part of what CI installs.
        urunc_tests::skipped_not_in_ci!("SKIPPED: {test}: {reason}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = match block_root_guest(dir.path()) {
        Ok(entries) => entries,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return;
        }
    };
    // Declared before containerd, so containerd stops before the pool goes.
    let pool = ThinPool::create(
        dir.path(),
        &format!("urunc-rs-test-{}", std::process::id()),
        4 << 30,
    )
    .expect("thin pool");
    let snapshotter_root = dir.path().join("devmapper");
    let ctrd = PrivateContainerd::start_with(ContainerdOptions {
        extra_config: format!(
            "\n[plugins.\"io.containerd.snapshotter.v1.devmapper\"]\n  \
             pool_name = {:?}\n  root_path = {:?}\n  base_image_size = \"256MB\"\n  \
             discard_blocks = true\n",
            pool.name,
            snapshotter_root.display().to_string()
        ),
        ..ContainerdOptions::default()
    })
    .expect("containerd with the devmapper snapshotter");

    let archive = rooted_image_archive(dir.path(), IMAGE, entries).expect("pack the image");
    let archive_text = archive.display().to_string();
    ctr_ok(
        &ctrd,
        &[
            "images",
            "import",
            "--snapshotter",
            "devmapper",
            &archive_text,
        ],
    );

    let mut run = ctrd.ctr_command(&[
        "run",
        "--snapshotter",
        "devmapper",
        "--runtime",
        RUNTIME,
        IMAGE,
        ID,
    ]);
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let booted = console.wait_for(&booted_from_vda_line(), Duration::from_secs(240));
    assert!(
        booted.is_ok(),
        "the guest did not run from its root disk: {booted:?}\nconsole:\n{}\ncontainerd:\n{}",
        console.text(),
        ctrd.log_tail(60)
    );
    // While it runs, the rootfs is nobody's mount: the guest is the device's only user.
    let bundle = ctrd.bundle_dir(ID);
    assert!(
        mounts_under(&bundle).expect("mountinfo").is_empty(),
        "the rootfs device is still mounted on the host while the guest uses it"
    );

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", ID]);
    let status = run
        .wait_within(Duration::from_secs(60))
        .expect("ctr run ends");
    assert_eq!(status.code(), Some(137));
    ctr_ok(&ctrd, &["container", "rm", ID]);
    assert!(vmms_mentioning(ID).is_empty(), "{:?}", vmms_mentioning(ID));
    assert!(
        mounts_under(ctrd.dir()).expect("mountinfo").is_empty(),
        "{:?}",
        mounts_under(ctrd.dir())
    );
    let open: Vec<_> = pool
        .devices()
        .expect("dmsetup info")
        .into_iter()
        .filter(|(name, open)| name != &pool.name && *open > 0)
        .collect();
    assert!(open.is_empty(), "thin devices still open: {open:?}");
    assert_nothing_left(&ctrd);
    let images = ctr(&ctrd, &["images", "rm", IMAGE], Duration::from_secs(60));
    assert!(images.status.success(), "{images:?}");
    ctrd.stop().expect("stop containerd");
}
