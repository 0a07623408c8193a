//! Boots both PVH guests under qemu/TCG directly.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{pvh_guest, PvhBehaviour};
use crate::host_processes::is_alive;

const QEMU: &str = "qemu-system-x86_64";

fn qemu_command(kernel: &std::path::Path) -> Command {
    let mut qemu = Command::new(QEMU);
    qemu.args(crate::guests::microvm::microvm_tcg_args(32))
        .arg(kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    qemu
}

fn skip_reason() -> Option<String> {
    crate::host_tools::which(QEMU, "apt-get install qemu-system-x86")
        .err()
        .map(|error| error.to_string())
}

#[test]
fn power_off_guest_prints_its_marker_and_qemu_exits() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = pvh_guest(dir.path(), PvhBehaviour::PowerOff, "PVH-MARKER-off").unwrap();
    let started = Instant::now();
    let mut qemu = qemu_command(&kernel).spawn().unwrap();
    let deadline = started + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = qemu.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            qemu.kill().unwrap();
            qemu.wait().unwrap();
            panic!("qemu did not exit on the guest's triple fault within 30s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    qemu.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    qemu.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stdout.contains("PVH-MARKER-off\n"),
        "stdout {stdout:?} stderr {stderr:?}"
    );
    assert!(status.success(), "qemu: {status}, stderr {stderr:?}");
    println!("PVH power-off guest: qemu ran {elapsed:?}");
}

#[test]
fn halting_guest_prints_its_marker_and_keeps_running() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = pvh_guest(dir.path(), PvhBehaviour::HaltForever, "PVH-MARKER-halt").unwrap();
    let started = Instant::now();
    let mut qemu = qemu_command(&kernel).spawn().unwrap();
    let pid = qemu.id() as i32;
    let mut stdout = qemu.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("PVH-MARKER-halt\n") {
            match stdout.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => break,
            }
        }
        (
            String::from_utf8_lossy(&seen).into_owned(),
            started.elapsed(),
        )
    });
    let (seen, marker_after) = reader.join().unwrap();
    assert!(seen.contains("PVH-MARKER-halt\n"), "stdout {seen:?}");
    std::thread::sleep(Duration::from_millis(300));
    let still_running = qemu.try_wait().unwrap().is_none() && is_alive(pid);
    qemu.kill().unwrap();
    qemu.wait().unwrap();
    assert!(still_running, "qemu exited although the guest only halts");
    println!("PVH halting guest: marker after {marker_after:?}");
}
