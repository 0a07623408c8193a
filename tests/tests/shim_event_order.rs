//! A process that exits the moment it starts still gives TaskCreate < TaskStart < TaskExit in
//! containerd's event stream (`ctr events`): its exit is reaped while Start is in flight, and
//! the shim holds it until TaskStart is out. 20 times in a row, for a VMM and for runc.

mod shim_support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, ctr, eventually, RUNTIME};
use urunc_tests::containerd::ContainerdOptions;
use urunc_tests::images::busybox_image;
use urunc_tests::PrivateContainerd;

const RUNS: usize = 20;
const TOPICS: [&str; 3] = ["/tasks/create", "/tasks/start", "/tasks/exit"];

/// `ctr events` of one containerd, written to a file until dropped.
struct EventLog {
    child: Child,
    path: std::path::PathBuf,
}

impl EventLog {
    /// Subscribes, and returns once an event of this containerd is seen in the log (an image
    /// tag), so nothing later is missed.
    fn subscribe(ctrd: &PrivateContainerd, dir: &Path, image: &str) -> Self {
        let path = dir.join("events.log");
        let file = std::fs::File::create(&path).expect("events log");
        let child = ctrd
            .ctr_command(&["events"])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        let log = EventLog { child, path };
        let mut tag = 0;
        let subscribed = eventually(Duration::from_secs(20), || {
            tag += 1;
            let name = format!("{image}-probe-{tag}");
            let _ = ctr(
                ctrd,
                &["images", "tag", image, &name],
                Duration::from_secs(20),
            );
            log.text().contains("/images/create")
        });
        assert!(subscribed, "ctr events printed nothing: {}", log.text());
        log
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The task topics of container `id`, in the order containerd delivered them.
    fn task_topics(&self, id: &str) -> Vec<&'static str> {
        let needle = format!("\"container_id\":\"{id}\"");
        self.text()
            .lines()
            .filter(|line| line.contains(&needle))
            .filter_map(|line| {
                TOPICS
                    .into_iter()
                    .find(|t| line.contains(&format!(" {t} ")))
            })
            .collect()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill().and_then(|()| self.child.wait().map(drop)) {
            eprintln!("stopping ctr events: {error}");
        }
    }
}

/// Runs `ctr run --rm --runtime <ours> <run_args(id)>` for RUNS ids and checks each one's
/// events.
fn run_and_check_order(
    ctrd: &PrivateContainerd,
    log: &EventLog,
    run_args: &dyn Fn(&str) -> Vec<String>,
) {
    let ids: Vec<String> = (0..RUNS).map(|n| format!("quick-{n}")).collect();
    for id in &ids {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--runtime".into(),
            RUNTIME.into(),
        ];
        args.extend(run_args(id));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ctr(ctrd, &args, Duration::from_secs(60));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("failed to create"),
            "{id}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            ctrd.log_tail(30)
        );
    }
    for id in &ids {
        let complete = eventually(Duration::from_secs(10), || log.task_topics(id).len() >= 3);
        let topics = log.task_topics(id);
        assert!(complete, "{id}: events {topics:?}");
        assert_eq!(topics, TOPICS, "{id}: events out of order");
    }
}

#[test]
fn a_runc_process_that_exits_at_once_gives_create_start_exit_in_order() {
    let test = "a_runc_process_that_exits_at_once_gives_create_start_exit_in_order";
    let Some(ctrd) = containerd(test, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = "docker.io/library/urunc-busybox-quick:test";
    ctrd.import(&busybox_image(dir.path(), image).expect("busybox image"))
        .expect("import");
    let log = EventLog::subscribe(&ctrd, dir.path(), image);
    run_and_check_order(&ctrd, &log, &|id| {
        vec![image.to_string(), id.to_string(), "true".to_string()]
    });
    drop(log);
    assert_nothing_left(&ctrd);
}

/// The VMM is the static busybox under qemu's name: invoked as `qemu-system-x86_64` it answers
/// "applet not found" and exits, well within a millisecond of its exec, while Start still runs
/// the spec's poststart hook (a short sleep).
#[test]
fn a_vmm_that_exits_at_once_gives_create_start_exit_in_order() {
    let test = "a_vmm_that_exits_at_once_gives_create_start_exit_in_order";
    if !shim_support::prerequisites(test, &["containerd", "ctr", "runc", "sleep"]) {
        return;
    }
    let busybox = match urunc_tests::host_tools::static_busybox() {
        Ok(busybox) => busybox,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: {error}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_vmms = dir.path().join("vmms");
    std::fs::create_dir(&fake_vmms).expect("mkdir");
    std::fs::copy(&busybox, fake_vmms.join("qemu-system-x86_64")).expect("fake qemu");
    let shim_dir = urunc_tests::shim_binary::locate_shim_binary()
        .expect("the shim is built")
        .parent()
        .expect("its folder")
        .to_path_buf();
    let path = format!(
        "{}:{}:{}",
        fake_vmms.display(),
        shim_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    );
    let ctrd = PrivateContainerd::start_with(ContainerdOptions {
        extra_env: vec![("PATH".to_string(), path)],
        ..ContainerdOptions::default()
    })
    .expect("start a private containerd");
    // The whole spec (`ctr run --config`): ctr has no flag for hooks. No snapshot is mounted;
    // the rootfs is this folder.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("unikernel")).expect("rootfs");
    std::fs::write(rootfs.join("unikernel/kernel"), b"never booted").expect("kernel");
    let sleep = urunc_tests::host_tools::which("sleep", "coreutils").expect("sleep");
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": [], "cwd": "/"},
        "root": {"path": rootfs.display().to_string()},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/unikernel/kernel",
        },
        "linux": {"namespaces": [{"type": "mount"}]},
        "hooks": {"poststart": [{"path": sleep.display().to_string(), "args": ["sleep", "0.05"]}]},
    });
    let spec = urunc_tests::spec_bundle::write_spec(dir.path(), &spec).expect("spec");
    let spec = spec.display().to_string();
    let image = "docker.io/library/urunc-busybox-quick:test";
    ctrd.import(&busybox_image(dir.path(), image).expect("busybox image"))
        .expect("import");
    let log = EventLog::subscribe(&ctrd, dir.path(), image);
    run_and_check_order(&ctrd, &log, &|id| {
        vec!["--config".to_string(), spec.clone(), id.to_string()]
    });
    drop(log);
    assert_nothing_left(&ctrd);
}
