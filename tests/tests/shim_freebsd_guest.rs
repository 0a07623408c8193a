//! A `freebsd` unikernel through a real containerd, as far as this machine can take it: no
//! FreeBSD kernel can be built here, so the PVH stand-in guest plays the kernel (it ignores its
//! boot arguments and disks). What is checked is what the shim gives a FreeBSD guest: qemu's
//! argv as the freebsd kind plans it, urunit's configuration drive written at Create with the
//! container's process, visible in the VMM's confined root, and gone with everything else
//! after the container is removed.

mod shim_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr_ok, eventually,
    import_unikernel_files, run_detached_with, sandbox_with_ns, vmms_mentioning,
};
use urunc_tests::guests::{pvh_guest, PvhBehaviour};

const IMAGE: &str = "docker.io/library/pvh-freebsd:test";
const ID: &str = "freebsd-1";
const DISK: &str = "/unikernel/disk.img";

#[test]
fn a_freebsd_guest_gets_urunits_drive_and_leaves_nothing() {
    let test = "a_freebsd_guest_gets_urunits_drive_and_leaves_nothing";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = pvh_guest(dir.path(), PvhBehaviour::HaltForever, "pvh-freebsd").expect("guest");
    // A UFS image in the guest's eyes; its bytes do not matter to the stand-in.
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 64 * 1024]).expect("disk image");
    import_unikernel_files(
        &ctrd,
        dir.path(),
        IMAGE,
        &[("/unikernel/kernel", &kernel), (DISK, &disk)],
        &[
            ("unikernelType", "freebsd"),
            ("hypervisor", "qemu"),
            ("binary", "/unikernel/kernel"),
            ("block", DISK),
        ],
    );
    let (sandbox, with_ns) = sandbox_with_ns();
    run_detached_with(
        &ctrd,
        &with_ns,
        &["--cwd", "/srv"],
        IMAGE,
        ID,
        &["/urunit", "/bin/app", "-p", "8080"],
    );

    let bundle = ctrd.bundle_dir(ID).display().to_string();
    let vmms = vmms_mentioning(&bundle);
    assert_eq!(vmms.len(), 1, "one VMM: {vmms:?}\n{}", ctrd.log_tail(30));
    let pid = vmms[0].0;
    let argv = argv_of(pid);
    let after = |flag: &str| {
        let at = argv.iter().position(|a| a == flag);
        at.and_then(|at| argv.get(at + 1))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        after("-M"),
        "microvm,acpi=on,pic=on,pit=on,rtc=on",
        "{argv:?}"
    );
    assert_eq!(
        after("-append"),
        "vfs.root.mountfrom=ufs:/dev/vtbd0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd1",
        "{argv:?}"
    );
    let drives: Vec<&String> = argv
        .iter()
        .filter(|a| a.starts_with("format=raw"))
        .collect();
    assert_eq!(drives.len(), 2, "the disk, then urunit's: {argv:?}");
    assert!(
        drives[0].ends_with(&format!("file={bundle}/rootfs{DISK}")),
        "{drives:?}"
    );
    let config = PathBuf::from(
        drives[1]
            .strip_prefix("format=raw,if=none,id=urunit,file=")
            .unwrap_or_else(|| panic!("urunit's drive: {drives:?}")),
    );
    assert!(argv.contains(&"virtio-blk-device,serial=urunit,drive=urunit".to_owned()));

    let contents = std::fs::read_to_string(&config).expect("urunit's configuration");
    assert_eq!(contents.len(), 512, "one sector: {contents:?}");
    let process = "UCS\nUID:0\nGID:0\nWD:/srv\nARC:3\nARV:/bin/app\nARV:-p\nARV:8080\nUCE\n";
    assert!(contents.starts_with("UES\nPATH="), "{contents:?}");
    assert!(contents.contains(process), "{contents:?}");
    assert!(
        contents.contains("\nUNS\nIP:"),
        "the pod's network: {contents:?}"
    );
    let in_root = Path::new(&format!("/proc/{pid}/root")).join(config.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(&in_root).expect("the drive in the VMM's root"),
        contents
    );

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", ID]);
    assert!(
        eventually(Duration::from_secs(20), || ctr_ok(&ctrd, &["task", "ls"])
            .contains("STOPPED")),
        "task did not stop: {}",
        ctr_ok(&ctrd, &["task", "ls"])
    );
    assert_sandbox_clean(&sandbox, "after the exit");
    ctr_ok(&ctrd, &["task", "delete", ID]);
    ctr_ok(&ctrd, &["container", "rm", ID]);
    assert!(!config.exists(), "{} left", config.display());
    assert_nothing_left(&ctrd);
}

/// The exact argv of process `pid`.
fn argv_of(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the VMM's argv");
    raw.split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}
