//! Containers without urunc configuration go through runc, with containerd's usual lifecycle:
//! stdio, exit codes, exec, kill, delete, and nothing left afterwards.

mod shim_support;

use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, ctr, ctr_ok, ctr_on_a_pty, RUNTIME};
use urunc_tests::images::busybox_image;
use urunc_tests::task_client::{self, shim_socket, Message};

const IMAGE: &str = "docker.io/library/urunc-busybox:test";

#[test]
fn busybox_runs_prints_and_exits_with_its_code() {
    let Some(ctrd) = containerd("busybox_runs_prints_and_exits_with_its_code", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    ctrd.import(&busybox_image(dir.path(), IMAGE).expect("busybox image"))
        .expect("import");

    let out = ctr(
        &ctrd,
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            IMAGE,
            "bb-exit",
            "sh",
            "-c",
            "echo hello-from-runc-path; exit 7",
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hello-from-runc-path"),
        "stdout: {stdout:?}\n{}",
        ctrd.log_tail(30)
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&ctrd);
}

#[test]
fn exec_into_a_running_busybox_and_kill_it() {
    let Some(ctrd) = containerd("exec_into_a_running_busybox_and_kill_it", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    ctrd.import(&busybox_image(dir.path(), IMAGE).expect("busybox image"))
        .expect("import");

    ctr_ok(
        &ctrd,
        &[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            IMAGE,
            "bb-exec",
            "sleep",
            "300",
        ],
    );
    let out = ctr(
        &ctrd,
        &[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "bb-exec",
            "sh",
            "-c",
            "echo from-exec; exit 4",
        ],
        Duration::from_secs(30),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("from-exec"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    let pids = ctr_ok(&ctrd, &["task", "ps", "bb-exec"]);
    assert!(pids.lines().count() >= 2, "task ps: {pids}");
    let metrics = ctr_ok(&ctrd, &["task", "metrics", "bb-exec"]);
    assert!(metrics.contains("memory"), "task metrics: {metrics}");

    ctr_ok(&ctrd, &["task", "pause", "bb-exec"]);
    assert!(ctr_ok(&ctrd, &["task", "ls"]).contains("PAUSED"));
    ctr_ok(&ctrd, &["task", "resume", "bb-exec"]);

    // An exec registered but never started has no pid: a Kill of it is NotFound, and must not
    // reach the shim's own process group (kill(0)).
    let socket = shim_socket(&ctrd.bundle_dir("bb-exec")).expect("the shim's address");
    let spec = Message::default()
        .text(
            1,
            "types.containerd.io/opencontainers/runtime-spec/1/Process",
        )
        .text(2, r#"{"args":["true"],"cwd":"/"}"#);
    let exec = Message::default()
        .text(1, "bb-exec")
        .text(2, "never-started")
        .bytes(7, spec.encoded());
    let limit = Duration::from_secs(5);
    let registered = task_client::call(&socket, "Exec", &exec, limit).expect("Exec");
    assert_eq!(registered.code, 0, "Exec: {}", registered.message);
    let kill = Message::default()
        .text(1, "bb-exec")
        .text(2, "never-started")
        .uint(3, 15);
    let killed = task_client::call(&socket, "Kill", &kill, limit).expect("Kill of the exec");
    assert_eq!(
        killed.code, 5,
        "Kill of an exec never started: {}",
        killed.message
    );
    assert!(
        killed.message.contains("never started"),
        "{}",
        killed.message
    );
    assert!(ctr_ok(&ctrd, &["task", "ls"]).contains("RUNNING"));

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "bb-exec"]);
    assert!(shim_support::eventually(Duration::from_secs(20), || {
        ctr_ok(&ctrd, &["task", "ls"]).contains("STOPPED")
    }));
    ctr_ok(&ctrd, &["task", "delete", "bb-exec"]);
    ctr_ok(&ctrd, &["container", "rm", "bb-exec"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn a_terminal_container_gets_a_pty() {
    // `ctr run -t` needs a terminal of its own: util-linux's `script` gives it one.
    let Some(ctrd) = containerd("a_terminal_container_gets_a_pty", &["script"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    ctrd.import(&busybox_image(dir.path(), IMAGE).expect("busybox image"))
        .expect("import");
    let out = ctr_on_a_pty(
        &ctrd,
        &format!(
            "run -t --rm --runtime {RUNTIME} {IMAGE} bb-tty sh -c 'tty; echo on-a-tty; exit 5'"
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("/dev/pts/"),
        "tty: {stdout:?}\n{}",
        ctrd.log_tail(30)
    );
    assert!(stdout.contains("on-a-tty"), "{stdout:?}");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_nothing_left(&ctrd);
}

#[test]
fn stdin_reaches_the_container_and_closing_it_ends_cat() {
    let Some(ctrd) = containerd("stdin_reaches_the_container_and_closing_it_ends_cat", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    ctrd.import(&busybox_image(dir.path(), IMAGE).expect("busybox image"))
        .expect("import");
    // ctr copies its stdin (a pipe, as in `echo | ctr run`) to the task; at EOF the process's
    // stdin must close so cat ends. (With /dev/null as stdin, ctr never opens the FIFO and
    // containerd's own runc shim waits forever too.)
    let mut run = ctrd.ctr_command(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "bb-stdin",
        "cat",
    ]);
    run.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = run.spawn().expect("spawn ctr run");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut child = urunc_tests::guests::KillOnDrop(child);
    std::io::Write::write_all(&mut stdin, b"piped-through-stdin\n").expect("write stdin");
    drop(stdin);
    let status = child
        .wait_within(Duration::from_secs(60))
        .expect("cat ends at EOF");
    let mut output = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut output).expect("read stdout");
    assert!(
        output.contains("piped-through-stdin"),
        "stdout: {output:?}\n{}",
        ctrd.log_tail(30)
    );
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_nothing_left(&ctrd);
}
