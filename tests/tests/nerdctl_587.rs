//! urunc #587's reproduction as its report writes it: `nerdctl run -d
//! --runtime io.containerd.urunc.v2 <image>` on nerdctl's default bridge
//! CNI network, `nerdctl kill`, [`ROUNDS`] times, then `nerdctl rm -f`.
//! Afterwards: no urunc tap and no tc filter in any network namespace, the
//! host namespace as before, no port left on nerdctl's bridge, no pinned
//! netns, no VMM, no shim of this containerd.
//!
//!     sudo cargo test -p urunc-tests --test nerdctl_587 -- --nocapture
//!     sudo URUNC_TEST_CONTAINERD=2 cargo test -p urunc-tests --test nerdctl_587 -- --nocapture
//!
//! What it takes from the shim: nerdctl's CNI hook runs at `createRuntime`
//! and finds the container's netns through the state's
//! `nerdctl/network-namespace` annotation (a unikernel has no pid at
//! Create), which names the fresh netns the shim made; `nerdctl run -d`
//! gives stdout and stderr as nerdctl's `binary://` logging URI.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use urunc_tests::command;
use urunc_tests::cri::probes::{shims_of, vmms_of};
use urunc_tests::critest::print_to_log;
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::host_processes::{other_processes, processes_referring_to};
use urunc_tests::peers::Peer;
use urunc_tests::sandbox::{is_urunc_tap, NetSnapshot};
use urunc_tests::unikernel_images::pvh_image;
use urunc_tests::wait::eventually;
use urunc_tests::PrivateContainerd;

const ROUNDS: usize = 50;
const RUNTIME: &str = "io.containerd.urunc.v2";
const IMAGE: &str = "docker.io/library/urunc-587-pvh:latest";
const MARKER: &str = "URUNC-PVH-587";
/// nerdctl's default network's bridge.
const NERDCTL_BRIDGE: &str = "nerdctl0";
const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// host-local's leases of nerdctl's default network (named `bridge`), one file per address.
const IPAM_LEASES: &str = "/var/lib/cni/networks/bridge";
const STOP_LIMIT: Duration = Duration::from_secs(30);
const NERDCTL_LIMIT: Duration = Duration::from_secs(120);
/// How long the kernel may take to free the released namespaces (with the veths in them):
/// its cleanup work queue freed 50 of them 2 ms to over 30 s after `rm -f` on these busy
/// 2-core machines.
const RELEASE_LIMIT: Duration = Duration::from_secs(180);

struct Nerdctl<'a> {
    program: PathBuf,
    containerd: &'a PrivateContainerd,
    data_root: PathBuf,
    net_conf: PathBuf,
}

impl Nerdctl<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut nerdctl = Command::new(&self.program);
        nerdctl
            .arg("--address")
            .arg(self.containerd.address())
            .args(["--namespace", self.containerd.namespace()])
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--cni-path")
            .arg(CNI_BIN_DIR)
            .arg("--cni-netconfpath")
            .arg(&self.net_conf)
            .args(args);
        command::output_within(&mut nerdctl, NERDCTL_LIMIT)
            .unwrap_or_else(|e| panic!("nerdctl {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "nerdctl {args:?}: {:?}\nstdout: {}\nstderr: {}\ncontainerd:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.containerd.log_tail(30)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn status(&self, id: &str) -> String {
        self.ok(&["inspect", "--format", "{{.State.Status}}", id])
    }
}

/// Every network namespace on the host, by a path that opens it and its inode: the pinned
/// ones and those of running processes, one path per namespace.
fn network_namespaces() -> Vec<(PathBuf, u64)> {
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let pinned = std::fs::read_dir("/var/run/netns")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let processes = other_processes()
        .into_iter()
        .map(|(_, dir)| dir.join("ns/net"));
    for path in pinned.into_iter().chain(processes) {
        if let Ok(meta) = std::fs::metadata(&path) {
            if seen.insert((meta.dev(), meta.ino())) {
                found.push((path, meta.ino()));
            }
        }
    }
    found
}

/// The inode of the fresh netns the shim pinned for container `id` (nerdctl's CNI made its
/// eth0 there): the namespace its tap and rules lived in.
fn pinned_netns_inode(namespace: &str, id: &str) -> u64 {
    let pin = Path::new("/run/urunc-rs")
        .join(namespace)
        .join(id)
        .join("netns");
    std::fs::metadata(&pin)
        .unwrap_or_else(|e| panic!("{id} runs without its pinned netns {}: {e}", pin.display()))
        .ino()
}

/// urunc taps and tc filters in the namespace at `netns`.
fn urunc_leftovers_in(netns: &Path) -> Vec<String> {
    let enter = format!("--net={}", netns.display());
    let Ok(links) =
        command::checked(Command::new("nsenter").args([&enter, "ip", "-o", "link", "show"]))
    else {
        return Vec::new(); // the namespace went away meanwhile
    };
    let mut leftovers = Vec::new();
    for link in links
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
    {
        if is_urunc_tap(link) {
            leftovers.push(format!("{}: tap {link}", netns.display()));
        }
        for hook in ["ingress", "egress"] {
            if let Ok(filters) = command::checked(
                Command::new("nsenter").args([&enter, "tc", "filter", "show", "dev", link, hook]),
            ) {
                if filters.contains("mirred") {
                    leftovers.push(format!("{}: {link} {hook}: {filters}", netns.display()));
                }
            }
        }
    }
    leftovers
}

/// Deletes nerdctl's bridge when the test ends, however it ends (nerdctl creates it on the
/// first run and never removes it).
struct BridgeCleanup;

impl BridgeCleanup {
    fn delete() -> Result<(), String> {
        if !Path::new("/sys/class/net").join(NERDCTL_BRIDGE).exists() {
            return Ok(());
        }
        command::checked(Command::new("ip").args(["link", "del", NERDCTL_BRIDGE]))
            .map(drop)
            .map_err(|error| format!("delete {NERDCTL_BRIDGE}: {error}"))
    }
}

impl Drop for BridgeCleanup {
    fn drop(&mut self) {
        if let Err(error) = Self::delete() {
            eprintln!("{error}");
        }
    }
}

fn bridge_ports() -> Vec<String> {
    if !Path::new("/sys/class/net").join(NERDCTL_BRIDGE).exists() {
        return Vec::new();
    }
    command::checked(Command::new("ip").args(["-o", "link", "show", "master", NERDCTL_BRIDGE]))
        .map(|listing| listing.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The shim's pinned network namespaces of containerd namespace `namespace`: what is left in
/// its state folder, and nsfs mounts under it.
fn pinned_netns_of(namespace: &str) -> Vec<String> {
    let folder = Path::new("/run/urunc-rs").join(namespace);
    let mut left: Vec<String> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| format!("state {}", e.path().display()))
                .collect()
        })
        .unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", folder.display());
    left.extend(
        mounts
            .lines()
            .filter(|line| {
                line.split(' ')
                    .nth(4)
                    .is_some_and(|at| at.starts_with(&prefix))
            })
            .map(|line| format!("mount {line}")),
    );
    left
}

/// The bridge `link` is a port of, if any.
fn master_of(link: &str) -> Option<String> {
    std::fs::read_link(Path::new("/sys/class/net").join(link).join("master"))
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// What this test could have added to the host netns and did not remove: urunc taps, veths
/// (a pod's host end), nerdctl's bridge, and qdiscs and filters on those or on the links that
/// were there before. Other tests of the machine run CNI pods meanwhile: their bridges are
/// none of ours, nor is a port of a bridge other than nerdctl's.
fn host_additions(before: &NetSnapshot, after: &NetSnapshot) -> Vec<String> {
    let could_be_ours = |link: &str| {
        (is_urunc_tap(link) || link.starts_with("veth") || link == NERDCTL_BRIDGE)
            && master_of(link).is_none_or(|master| master == NERDCTL_BRIDGE)
    };
    let added: Vec<&String> = after
        .links
        .iter()
        .filter(|link| !before.links.contains(link) && could_be_ours(link))
        .collect();
    let watched: Vec<&String> = added.iter().copied().chain(&before.links).collect();
    let on_watched = |line: &str| {
        watched.iter().any(|link| {
            line.contains(&format!("dev {link} ")) || line.starts_with(&format!("{link} "))
        })
    };
    let mut additions: Vec<String> = added
        .iter()
        .map(|link| format!("host link {link}"))
        .collect();
    for (what, before, after) in [
        ("qdisc", &before.qdiscs, &after.qdiscs),
        ("filter", &before.filters, &after.filters),
    ] {
        additions.extend(
            after
                .iter()
                .filter(|line| !before.contains(line) && on_watched(line))
                .map(|line| format!("host {what} {line}")),
        );
    }
    additions
}

/// host-local leases still held by containers of containerd namespace `namespace` (a lease
/// names the container as `<namespace>-<id>`).
fn leases_of(namespace: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(IPAM_LEASES) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|owner| owner.contains(namespace)))
        .map(|path| format!("IP lease {}", path.display()))
        .collect()
}

/// What the containers of `containerd` may leave outside their namespaces: ports on
/// nerdctl's bridge, VMMs, shims, pinned namespaces, IP leases, and processes of nerdctl's
/// data root `nerdctl_root` (its logging binaries, its hooks).
fn left_by(containerd: &PrivateContainerd, nerdctl_root: &Path) -> Vec<String> {
    let mut leftovers: Vec<String> = bridge_ports()
        .into_iter()
        .map(|port| format!("bridge port {port}"))
        .collect();
    leftovers.extend(
        vmms_of(containerd.dir())
            .into_iter()
            .map(|(pid, cmd)| format!("VMM {pid}: {cmd}")),
    );
    leftovers.extend(
        shims_of(containerd.address())
            .into_iter()
            .map(|shim| format!("shim {}", shim.pid)),
    );
    leftovers.extend(pinned_netns_of(containerd.namespace()));
    leftovers.extend(leases_of(containerd.namespace()));
    leftovers.extend(
        processes_referring_to(nerdctl_root)
            .into_iter()
            .map(|(pid, cmd)| format!("nerdctl process {pid}: {cmd}")),
    );
    leftovers
}

/// One test at a time: both use nerdctl's one default bridge.
static BRIDGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a test of this file runs with; `None` after printing SKIPPED. Fields drop in order:
/// containerd (its teardown's poststop hooks read nerdctl's files) before the scratch folder,
/// both before the bridge is deleted.
struct Fixture {
    containerd: PrivateContainerd,
    scratch: tempfile::TempDir,
    program: PathBuf,
    _bridge: BridgeCleanup,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    fn new(test: &str) -> Option<Fixture> {
        let serial = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
        let program = match Peer::pinned("nerdctl").and_then(|peer| peer.program("nerdctl")) {
            Ok(program) => program,
            Err(error) => {
                urunc_tests::skipped!("SKIPPED: {test}: {error}");
                return None;
            }
        };
        if !nix::unistd::Uid::effective().is_root() {
            urunc_tests::skipped!("SKIPPED: {test}: needs root");
            return None;
        }
        if Path::new("/sys/class/net").join(NERDCTL_BRIDGE).exists() {
            urunc_tests::skipped!(
                "SKIPPED: {test}: {NERDCTL_BRIDGE} exists: another nerdctl uses the host"
            );
            return None;
        }
        let bridge = BridgeCleanup;
        let scratch = tempfile::tempdir().expect("scratch folder");
        let containerd = PrivateContainerd::start().expect("private containerd");
        let archive = pvh_image(scratch.path(), IMAGE, PvhBehaviour::HaltForever, MARKER)
            .expect("pack the PVH image");
        containerd.import(&archive).expect("import the PVH image");
        Some(Fixture {
            containerd,
            scratch,
            program,
            _bridge: bridge,
            _serial: serial,
        })
    }

    fn nerdctl(&self) -> Nerdctl<'_> {
        Nerdctl {
            program: self.program.clone(),
            containerd: &self.containerd,
            data_root: self.scratch.path().join("nerdctl"),
            net_conf: self.scratch.path().join("net.d"),
        }
    }
}

#[test]
fn fifty_nerdctl_runs_and_kills_leave_no_tap_rule_vmm_or_shim() {
    let test = "fifty_nerdctl_runs_and_kills_leave_no_tap_rule_vmm_or_shim";
    let Some(fixture) = Fixture::new(test) else {
        return;
    };
    let containerd = &fixture.containerd;
    let nerdctl = fixture.nerdctl();
    let host_before = NetSnapshot::take(None).expect("host snapshot");
    let mut ids = Vec::new();
    // The host's and the containers' namespaces; other tests' sandboxes are none of ours.
    let mut ours = BTreeSet::from([std::fs::metadata("/proc/self/ns/net")
        .expect("host netns")
        .ino()]);
    for round in 0..ROUNDS {
        let id = nerdctl.ok(&["run", "-d", "--runtime", RUNTIME, IMAGE]);
        ours.insert(pinned_netns_inode(containerd.namespace(), &id));
        if round == 0 {
            // Through the shim's binary:// stdio: nerdctl's logging binary keeps the console.
            assert!(
                eventually(STOP_LIMIT, || nerdctl.ok(&["logs", &id]).contains(MARKER)),
                "nerdctl logs {id}: {:?}",
                nerdctl.ok(&["logs", &id])
            );
        }
        nerdctl.ok(&["kill", &id]);
        assert!(
            eventually(STOP_LIMIT, || nerdctl.status(&id) == "exited"),
            "round {round}: {id} is {} after nerdctl kill",
            nerdctl.status(&id)
        );
        ids.push(id);
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    nerdctl.ok(&rm);

    // The kernel frees a namespace (and the veth in it, nerdctl's bridge port) in a work queue
    // after its last reference went: allow it that moment.
    let released = std::time::Instant::now();
    let ports_gone = eventually(RELEASE_LIMIT, || bridge_ports().is_empty());
    print_to_log(&format!(
        "nerdctl #587 loop: bridge ports gone: {ports_gone}, {} ms after rm -f returned",
        released.elapsed().as_millis()
    ));
    let host = std::fs::metadata("/proc/self/ns/net")
        .expect("host netns")
        .ino();
    let mut leftovers = Vec::new();
    for (path, inode) in network_namespaces() {
        // The kernel reuses a freed namespace's inode: one pinned by `ip netns` or CRI under
        // /var/run/netns is another test's (the shim pins only in its state folder).
        if !ours.contains(&inode) || (inode != host && path.starts_with("/var/run/netns")) {
            continue;
        }
        if inode != host {
            leftovers.push(format!("a container's netns is alive: {}", path.display()));
        }
        leftovers.extend(urunc_leftovers_in(&path));
    }
    leftovers.extend(left_by(containerd, &nerdctl.data_root));
    if let Err(error) = BridgeCleanup::delete() {
        leftovers.push(error);
    }
    let host_after = NetSnapshot::take(None).expect("host snapshot");
    leftovers.extend(host_additions(&host_before, &host_after));
    print_to_log(&format!(
        "nerdctl #587 loop: {ROUNDS}/{ROUNDS} rounds, {} leftovers",
        leftovers.len()
    ));
    assert!(
        leftovers.is_empty(),
        "left after the loop:\n{}",
        leftovers.join("\n")
    );
    drop(nerdctl);
    fixture.containerd.stop().expect("containerd teardown");
}

/// The shim dies (SIGKILL) under a running nerdctl container: containerd's cleanup runs the
/// shim's `delete`, which finishes the teardown from the persisted state alone, nerdctl's
/// poststop CNI hook included, and releases the fresh netns; `nerdctl rm -f` then finds
/// nothing to undo.
#[test]
fn a_nerdctl_container_whose_shim_died_leaves_no_netns_lease_or_port() {
    let test = "a_nerdctl_container_whose_shim_died_leaves_no_netns_lease_or_port";
    let Some(fixture) = Fixture::new(test) else {
        return;
    };
    let containerd = &fixture.containerd;
    let nerdctl = fixture.nerdctl();
    let id = nerdctl.ok(&["run", "-d", "--runtime", RUNTIME, IMAGE]);
    let pin = Path::new("/run/urunc-rs")
        .join(containerd.namespace())
        .join(&id)
        .join("netns");
    assert!(pin.exists(), "no pinned netns {}", pin.display());
    let shims = shims_of(containerd.address());
    assert_eq!(shims.len(), 1, "{shims:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0].pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the shim");
    assert!(
        eventually(STOP_LIMIT, || nerdctl.status(&id) != "running"),
        "{id} is {} after its shim died",
        nerdctl.status(&id)
    );
    nerdctl.ok(&["rm", "-f", &id]);

    // containerd runs the shim's `delete` in the background after it saw the shim die, and the
    // kernel frees the namespace after that: both get their moment.
    let leftovers_now = || left_by(containerd, &nerdctl.data_root);
    eventually(RELEASE_LIMIT, || leftovers_now().is_empty());
    let leftovers = leftovers_now();
    assert!(
        leftovers.is_empty(),
        "left after the shim's crash:\n{}\ncontainerd:\n{}",
        leftovers.join("\n"),
        containerd.log_tail(40)
    );
    drop(nerdctl);
    fixture.containerd.stop().expect("containerd teardown");
}
