//! Boots the Linux guest under qemu/TCG directly: once on a tap in a scratch
//! network namespace (answers HTTP from that namespace), once powering off.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    kernel_cmdline, linux_guest, microvm_qemu_args as qemu_args, GuestNetwork, HTTP_ANSWER,
    HTTP_PORT, READY_MARKER,
};
use crate::command;
use crate::guests::{ConsoleWatcher, KillOnDrop};

const QEMU: &str = "qemu-system-x86_64";
const BOOT_LIMIT: Duration = Duration::from_secs(90);

fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root for network namespaces and taps".into());
    }
    if let Err(error) = crate::host_tools::which(QEMU, "apt-get install qemu-system-x86") {
        return Some(error.to_string());
    }
    super::find_kernel().err().map(|error| error.to_string())
}

/// A network namespace holding a tap with the guest's gateway address;
/// deleted (after the VMM is gone) on drop.
struct ScratchNetns {
    name: String,
}

impl ScratchNetns {
    fn create(tap: &str, gateway_cidr: &str) -> crate::Result<ScratchNetns> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "urlx{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        command::checked(Command::new("ip").args(["netns", "add", &name]))?;
        let netns = ScratchNetns { name };
        let ip = |args: &[&str]| {
            command::checked(Command::new("ip").arg("-n").arg(&netns.name).args(args))
        };
        ip(&["link", "set", "lo", "up"])?;
        ip(&["tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr"])?;
        ip(&["addr", "add", gateway_cidr, "dev", tap])?;
        ip(&["link", "set", tap, "up"])?;
        Ok(netns)
    }

    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        if let Err(error) = command::checked(Command::new("ip").args(["netns", "del", &self.name]))
        {
            eprintln!("ScratchNetns({}): {error}", self.name);
        }
    }
}

#[test]
fn boots_on_a_tap_and_answers_http_from_the_namespace() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guest = linux_guest(dir.path()).unwrap();
    let network = GuestNetwork {
        address: "10.211.0.2".parse().unwrap(),
        gateway: "10.211.0.1".parse().unwrap(),
        prefix_len: 24,
        hostname: "urunc-guest".into(),
        device: "eth0".into(),
    };
    let netns = ScratchNetns::create("tap0", "10.211.0.1/24").unwrap();
    let cmdline = kernel_cmdline(Some(&network), false).unwrap();
    let args = qemu_args(&guest, &cmdline, Some("tap0"));
    println!(
        "kernel {} ({})\nqemu {}",
        guest.kernel.display(),
        guest.kernel_release,
        args.join(" ")
    );
    let started = Instant::now();
    let mut qemu = KillOnDrop(
        netns
            .exec(QEMU)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let console = ConsoleWatcher::new(qemu.0.stdout.take().unwrap());
    let marker = format!("{READY_MARKER} {}", network.address);
    let booted_after = console.wait_for(&marker, BOOT_LIMIT).unwrap();
    println!("ready marker after {booted_after:?}");
    assert!(
        !console.text().contains("URUNC-LINUX-ERROR"),
        "{}",
        console.text()
    );

    let url = format!("http://{}:{HTTP_PORT}/", network.address);
    let answer = command::checked(netns.exec("curl").args(["-sS", "--max-time", "10", &url]));
    let answered_after = started.elapsed();
    let answer = answer.unwrap_or_else(|error| panic!("{error}\nconsole:\n{}", console.text()));
    assert_eq!(answer.trim(), HTTP_ANSWER);
    println!("answered over the tap after {answered_after:?}");
    drop(qemu);
    drop(netns);
}

#[test]
fn powers_off_by_itself_when_asked() {
    if let Some(reason) = skip_reason() {
        crate::skipped!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guest = linux_guest(dir.path()).unwrap();
    let cmdline = kernel_cmdline(None, true).unwrap();
    let mut qemu = KillOnDrop(
        Command::new(QEMU)
            .args(qemu_args(&guest, &cmdline, None))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let console = ConsoleWatcher::new(qemu.0.stdout.take().unwrap());
    let booted_after = console
        .wait_for(&format!("{READY_MARKER} none"), BOOT_LIMIT)
        .unwrap();
    let status = qemu
        .wait_within(Duration::from_secs(30))
        .unwrap_or_else(|error| panic!("{error}\nconsole:\n{}", console.text()));
    assert!(
        status.success(),
        "qemu {status}; console:\n{}",
        console.text()
    );
    println!("marker after {booted_after:?}, qemu exited {status}");
}
