//! Hostile files in an image: a FIFO, a device node, a socket, a huge or sparse file where the
//! urunc configuration expects `/urunc.json`, the kernel, the initrd or the guest disk. Each is
//! refused within a second with an error naming the field; the shim never blocks on one nor
//! reads one into memory (its peak RSS stays small) and nothing is left behind. The same holds
//! for a spec's namespace paths (`linux.namespaces[i].path`): a FIFO, a device, a regular file
//! or a socket where a namespace should be is refused at once, for a unikernel and for runc.

mod shim_support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use shim_support::{
    assert_nothing_left, containerd, ctr, remove_holder, run_holder, shims_of, state_dir,
    vmms_mentioning, RUNTIME,
};

/// Containers of one CRI sandbox share a shim: the holder keeps it alive across the hostile
/// Creates, so its peak RSS covers them all.
const GROUP_ID: &str = "hostile-files";
const TYPE: &str = "com.urunc.unikernel.unikernelType";
const HYPERVISOR: &str = "com.urunc.unikernel.hypervisor";
const BINARY: &str = "com.urunc.unikernel.binary";
const INITRD: &str = "com.urunc.unikernel.initrd";
const BLOCK: &str = "com.urunc.unikernel.block";
/// What the issue measured: 200 MB of whitespace before a valid configuration.
const BIG: u64 = 200 * 1000 * 1000;
const SPARSE: u64 = 2 << 30;
const PEAK_RSS_LIMIT_KIB: u64 = 16 * 1024;
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
enum Hostile {
    Fifo,
    Device,
    Socket,
    /// 200 MB of spaces, then a valid configuration (for `/urunc.json`).
    Big,
    Sparse,
}

impl Hostile {
    fn create(self, path: &Path) {
        match self {
            Hostile::Fifo => {
                nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)).expect("mkfifo")
            }
            // /dev/zero's numbers: a read of it never ends.
            Hostile::Device => mknod(
                path,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(1, 5),
            )
            .expect("mknod"),
            Hostile::Socket => {
                // The listener is dropped; the socket file stays.
                std::os::unix::net::UnixListener::bind(path).expect("bind");
            }
            Hostile::Big => {
                let mut file =
                    std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
                let spaces = vec![b' '; 1 << 20];
                let mut written = 0;
                while written < BIG {
                    file.write_all(&spaces).expect("write");
                    written += spaces.len() as u64;
                }
                file.write_all(
                    format!(r#"{{"{TYPE}":"linux","{HYPERVISOR}":"qemu","{BINARY}":"/unikernel/kernel"}}"#)
                        .as_bytes(),
                )
                .expect("write");
                file.flush().expect("flush");
            }
            Hostile::Sparse => std::fs::File::create(path)
                .and_then(|f| f.set_len(SPARSE))
                .expect("sparse file"),
        }
    }

    /// What the refusal says about the file.
    fn needle(self) -> &'static str {
        match self {
            Hostile::Fifo => "a FIFO",
            Hostile::Device => "a character device",
            Hostile::Socket => "a socket",
            Hostile::Big | Hostile::Sparse => "bytes this shim accepts",
        }
    }
}

/// Where the hostile file sits: `/urunc.json`, or the path a configuration key names.
#[derive(Clone, Copy, Debug)]
enum Slot {
    UruncJson,
    Key(&'static str),
}

#[test]
fn hostile_image_files_are_refused_at_once_and_the_shim_stays_small() {
    let test = "hostile_image_files_are_refused_at_once_and_the_shim_stays_small";
    let Some(ctrd) = containerd(test, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let shim = run_holder(&ctrd, dir.path(), "holder", GROUP_ID);

    let every_kind = [
        Hostile::Fifo,
        Hostile::Device,
        Hostile::Socket,
        Hostile::Big,
        Hostile::Sparse,
    ];
    let mut cases: Vec<(Slot, Hostile)> = Vec::new();
    for slot in [Slot::UruncJson, Slot::Key(BINARY), Slot::Key(INITRD)] {
        cases.extend(every_kind.iter().map(|kind| (slot, *kind)));
    }
    // A guest disk may be any size (the shim never reads it), but it is a regular file.
    for kind in [Hostile::Fifo, Hostile::Device, Hostile::Socket] {
        cases.push((Slot::Key(BLOCK), kind));
    }

    let mut timings = Vec::new();
    for (n, (slot, kind)) in cases.into_iter().enumerate() {
        let id = format!("hostile-{n}");
        let rootfs = dir.path().join(&id);
        std::fs::create_dir_all(rootfs.join("unikernel")).expect("mkdir");
        std::fs::write(rootfs.join("unikernel/kernel"), b"never booted").expect("kernel");
        let mut annotations = vec![format!("io.kubernetes.cri.sandbox-id={GROUP_ID}")];
        let field = match slot {
            Slot::UruncJson => {
                kind.create(&rootfs.join("urunc.json"));
                "/urunc.json"
            }
            Slot::Key(key) => {
                kind.create(&rootfs.join("unikernel/hostile"));
                annotations.extend([
                    format!("{TYPE}=linux"),
                    format!("{HYPERVISOR}=qemu"),
                    format!("{BINARY}=/unikernel/kernel"),
                ]);
                annotations.retain(|a| !a.starts_with(&format!("{key}=")));
                annotations.push(format!("{key}=/unikernel/hostile"));
                key
            }
        };
        let rootfs_text = rootfs.display().to_string();
        let mut args = vec!["run", "-d", "--runtime", RUNTIME, "--rootfs"];
        for annotation in &annotations {
            args.extend(["--annotation", annotation.as_str()]);
        }
        args.extend([rootfs_text.as_str(), id.as_str()]);
        let started = Instant::now();
        let out = ctr(&ctrd, &args, Duration::from_secs(20));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("{id} ({slot:?}, {kind:?})");
        assert!(!out.status.success(), "{case}: Create accepted it");
        assert!(
            stderr.contains(field) && stderr.contains(kind.needle()),
            "{case}: the error lacks {field:?} or {:?}: {stderr}\n{}",
            kind.needle(),
            ctrd.log_tail(20)
        );
        assert!(took < REFUSED_WITHIN, "{case}: refused after {took:?}");
        timings.push((case.clone(), took));
        let _ = ctr(&ctrd, &["container", "rm", &id], Duration::from_secs(30));
        assert!(!state_dir(&ctrd).join(&id).exists(), "{case}: state left");
        std::fs::remove_dir_all(&rootfs).expect("remove the hostile rootfs");
    }
    eprintln!("refusal times: {timings:#?}");

    let peak = peak_rss_kib(shim);
    eprintln!("shim {shim} peak RSS (VmHWM) after every hostile Create: {peak} KiB");
    assert!(
        shims_of(&ctrd).iter().any(|(pid, _)| *pid == shim),
        "the group's shim did not survive the hostile Creates"
    );
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "shim peak RSS {peak} KiB, limit {PEAK_RSS_LIMIT_KIB} KiB"
    );

    remove_holder(&ctrd, "holder");
    assert_nothing_left(&ctrd);
}

/// A file that is no namespace, where the spec names one.
#[derive(Clone, Copy, Debug)]
enum NotANamespace {
    Fifo,
    Device,
    Regular,
    Socket,
}

impl NotANamespace {
    fn create(self, path: &Path) {
        match self {
            NotANamespace::Fifo => Hostile::Fifo.create(path),
            NotANamespace::Device => Hostile::Device.create(path),
            NotANamespace::Socket => Hostile::Socket.create(path),
            NotANamespace::Regular => std::fs::write(path, b"not a namespace").expect("write"),
        }
    }

    fn needle(self) -> &'static str {
        match self {
            NotANamespace::Fifo => Hostile::Fifo.needle(),
            NotANamespace::Device => Hostile::Device.needle(),
            NotANamespace::Socket => Hostile::Socket.needle(),
            NotANamespace::Regular => "a regular file",
        }
    }
}

#[test]
fn namespace_paths_that_are_no_namespace_are_refused_at_once_and_leave_nothing() {
    let test = "namespace_paths_that_are_no_namespace_are_refused_at_once_and_leave_nothing";
    let Some(ctrd) = containerd(test, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let unikernel = [
        format!("{TYPE}=linux"),
        format!("{HYPERVISOR}=qemu"),
        format!("{BINARY}=/unikernel/kernel"),
    ];
    let kinds = [
        NotANamespace::Fifo,
        NotANamespace::Device,
        NotANamespace::Regular,
        NotANamespace::Socket,
    ];
    let mut timings = Vec::new();
    // The pod's netns of a unikernel, the ipc namespace of a runc container (no urunc keys).
    for (namespace, annotations) in [("network", &unikernel[..]), ("ipc", &[][..])] {
        for kind in kinds {
            let id = format!("hostile-{namespace}-{kind:?}").to_lowercase();
            let rootfs = dir.path().join(&id);
            std::fs::create_dir_all(rootfs.join("unikernel")).expect("mkdir");
            std::fs::write(rootfs.join("unikernel/kernel"), b"never booted").expect("kernel");
            let hostile = dir.path().join(format!("{id}.ns"));
            kind.create(&hostile);
            let with_ns = format!("{namespace}:{}", hostile.display());
            let rootfs_text = rootfs.display().to_string();
            let mut args = vec!["run", "-d", "--runtime", RUNTIME, "--with-ns", &with_ns];
            for annotation in annotations {
                args.extend(["--annotation", annotation.as_str()]);
            }
            args.extend(["--rootfs", rootfs_text.as_str(), id.as_str()]);
            let started = Instant::now();
            let out = ctr(&ctrd, &args, Duration::from_secs(20));
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let case = format!("{id} ({namespace} namespace, {kind:?})");
            assert!(!out.status.success(), "{case}: Create accepted it");
            let value = hostile.display().to_string();
            for needle in ["linux.namespaces[", "].path", &value, kind.needle()] {
                assert!(
                    stderr.contains(needle),
                    "{case}: the error lacks {needle:?}: {stderr}\n{}",
                    ctrd.log_tail(20)
                );
            }
            assert!(took < REFUSED_WITHIN, "{case}: refused after {took:?}");
            timings.push((case.clone(), took));
            let _ = ctr(&ctrd, &["container", "rm", &id], Duration::from_secs(30));
            assert!(!state_dir(&ctrd).join(&id).exists(), "{case}: state left");
            assert!(
                vmms_mentioning(&rootfs_text).is_empty(),
                "{case}: a VMM was started"
            );
        }
    }
    eprintln!("refusal times: {timings:#?}");
    assert_nothing_left(&ctrd);
}

/// `VmHWM` of `/proc/<pid>/status`, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("shim status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in the shim's status")
}
