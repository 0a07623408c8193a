//! A process that exits the moment it starts still gives TaskCreate < TaskStart < TaskExit in
//! containerd's event stream (`ctr events`): its exit is reaped while Start is in flight, and
//! the shim holds it until TaskStart is out. 20 times in a row, for a VMM and for runc.

mod shim_support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, ctr, eventually, import_unikernel, RUNTIME};
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

/// Runs `ctr run --rm <image> <prefix>-N [command]` RUNS times and checks each one's events.
fn run_and_check_order(ctrd: &PrivateContainerd, log: &EventLog, image: &str, command: &[&str]) {
    let ids: Vec<String> = (0..RUNS).map(|n| format!("quick-{n}")).collect();
    for id in &ids {
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, image, id.as_str()];
        args.extend_from_slice(command);
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
    run_and_check_order(&ctrd, &log, image, &["true"]);
    drop(log);
    assert_nothing_left(&ctrd);
}

/// The VMM is the static busybox under qemu's name: invoked as `qemu-system-x86_64` it answers
/// "applet not found" and exits, well within a millisecond of its exec.
#[test]
fn a_vmm_that_exits_at_once_gives_create_start_exit_in_order() {
    let test = "a_vmm_that_exits_at_once_gives_create_start_exit_in_order";
    if !shim_support::prerequisites(test, &["containerd", "ctr", "runc"]) {
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
    let kernel = dir.path().join("kernel");
    std::fs::write(&kernel, b"never booted").expect("kernel");
    let image = "docker.io/library/urunc-quick-vmm:test";
    import_unikernel(&ctrd, dir.path(), image, &kernel, None, &[]);
    let log = EventLog::subscribe(&ctrd, dir.path(), image);
    run_and_check_order(&ctrd, &log, image, &[]);
    drop(log);
    assert_nothing_left(&ctrd);
}
