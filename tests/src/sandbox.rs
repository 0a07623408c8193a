//! A pod-like network namespace fixture: what a CNI leaves behind for a pod.
//!
//! `SandboxNetns` makes a namespace with `eth0` (one end of a veth pair, an
//! IPv4 /24 and a default route) and a *peer* namespace holding the other end,
//! so tests can send traffic "from outside the pod" without touching the host
//! namespace. Everything is created with `ip` (a child process), never by
//! entering a namespace from a test thread: the netns invariant says only the
//! workers of the `netns` crate ever call setns in our processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

/// The sandbox side of the veth pair, as a CNI names it.
pub const SANDBOX_IF: &str = "eth0";
/// The peer side of the veth pair, inside the peer namespace.
pub const PEER_IF: &str = "peer0";
/// eth0's address. Every sandbox/peer pair is its own isolated network, so the
/// same subnet can be reused by tests running at the same time.
pub const SANDBOX_IP: &str = "10.200.0.2";
/// The peer's address, also eth0's default gateway.
pub const PEER_IP: &str = "10.200.0.1";
pub const PREFIX_LEN: u8 = 24;

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Runs `ip`/`tc`-style commands and fails with their stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("spawning {program} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A unique name for a test object, short enough for an interface name.
pub fn unique_name(prefix: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// A sandbox namespace with `eth0` wired to a peer namespace; removed on drop.
pub struct SandboxNetns {
    name: String,
    peer: String,
}

impl SandboxNetns {
    /// A sandbox with eth0 (veth, 10.200.0.2/24, default via 10.200.0.1).
    pub fn create() -> Result<Self> {
        let sandbox = Self::create_bare()?;
        sandbox.add_eth0()?;
        Ok(sandbox)
    }

    /// A sandbox with only `lo`, like a container started by plain `ctr run`.
    pub fn create_bare() -> Result<Self> {
        let name = unique_name("ursbx");
        let peer = format!("{name}p");
        run("ip", &["netns", "add", &name])?;
        let sandbox = Self { name, peer };
        run("ip", &["-n", &sandbox.name, "link", "set", "lo", "up"])?;
        Ok(sandbox)
    }

    fn add_eth0(&self) -> Result<()> {
        let (s, p) = (self.name.as_str(), self.peer.as_str());
        run("ip", &["netns", "add", p])?;
        run(
            "ip",
            &[
                "link", "add", SANDBOX_IF, "netns", s, "type", "veth", "peer", "name", PEER_IF,
                "netns", p,
            ],
        )?;
        let sandbox_cidr = format!("{SANDBOX_IP}/{PREFIX_LEN}");
        let peer_cidr = format!("{PEER_IP}/{PREFIX_LEN}");
        run(
            "ip",
            &["-n", s, "addr", "add", &sandbox_cidr, "dev", SANDBOX_IF],
        )?;
        run("ip", &["-n", s, "link", "set", SANDBOX_IF, "up"])?;
        run("ip", &["-n", s, "route", "add", "default", "via", PEER_IP])?;
        run("ip", &["-n", p, "addr", "add", &peer_cidr, "dev", PEER_IF])?;
        run("ip", &["-n", p, "link", "set", PEER_IF, "up"])?;
        run("ip", &["-n", p, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Sets the MTU of eth0 and of its peer, as a CNI does for an overlay network (1400 and
    /// 1450 are common).
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        let mtu = mtu.to_string();
        run(
            "ip",
            &["-n", &self.name, "link", "set", SANDBOX_IF, "mtu", &mtu],
        )?;
        run(
            "ip",
            &["-n", &self.peer, "link", "set", PEER_IF, "mtu", &mtu],
        )?;
        Ok(())
    }

    /// The MTU of `link` in the sandbox namespace.
    pub fn mtu_of(&self, link: &str) -> Result<u32> {
        let path = format!("/sys/class/net/{link}/mtu");
        let text = self.exec("cat", &[&path])?;
        text.trim()
            .parse()
            .with_context(|| format!("{path} in {} holds {text:?}", self.name))
    }

    /// The namespace name given to `ip netns`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer namespace name (holds `peer0`).
    pub fn peer_name(&self) -> &str {
        &self.peer
    }

    /// The nsfs path a runtime is handed (`/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs a command inside the sandbox namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a command inside the peer namespace.
    pub fn exec_peer(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", self.peer.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// What tc and link state the sandbox holds now.
    pub fn snapshot(&self) -> Result<NetSnapshot> {
        NetSnapshot::take(Some(&self.name))
    }

    /// The inode of the sandbox namespace (its identity, like `ls -iL`).
    pub fn inode(&self) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(self.path())?.ino())
    }

    /// Deletes the namespace now (as a CNI/CRI would), keeping the peer.
    pub fn delete_now(&self) -> Result<()> {
        run("ip", &["netns", "del", &self.name]).map(drop)
    }
}

impl Drop for SandboxNetns {
    fn drop(&mut self) {
        for ns in [&self.name, &self.peer] {
            if !PathBuf::from("/run/netns").join(ns).exists() {
                continue;
            }
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("sandbox cleanup: {e:#}");
            }
        }
    }
}

/// Links, qdiscs and filters of one namespace, as `ip`/`tc` print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSnapshot {
    pub links: Vec<String>,
    pub qdiscs: Vec<String>,
    pub filters: Vec<String>,
}

impl NetSnapshot {
    /// `netns = None` reads the namespace of the calling process (the host).
    pub fn take(netns: Option<&str>) -> Result<Self> {
        let ns_args: Vec<String> = match netns {
            Some(ns) => vec!["-n".into(), ns.into()],
            None => vec![],
        };
        let with_ns = |rest: &[&str]| -> Vec<String> {
            let mut v = ns_args.clone();
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };
        let run_ns = |program: &str, rest: &[&str]| -> Result<String> {
            let args = with_ns(rest);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(program, &args)
        };
        let links: Vec<String> = run_ns("ip", &["-o", "link", "show"])?
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        let qdiscs = lines_sorted(&run_ns("tc", &["qdisc", "show"])?);
        let mut filters = Vec::new();
        for link in &links {
            for hook in ["ingress", "egress"] {
                let out = run_ns("tc", &["filter", "show", "dev", link, hook])?;
                filters.extend(out.lines().map(|l| format!("{link} {hook}: {l}")));
            }
        }
        filters.sort();
        let mut links = links;
        links.sort();
        Ok(Self {
            links,
            qdiscs,
            filters,
        })
    }

    /// Links whose name is a urunc tap (`tap<N>_urunc`).
    pub fn urunc_taps(&self) -> Vec<&String> {
        self.links.iter().filter(|l| is_urunc_tap(l)).collect()
    }

    /// Ingress or clsact qdiscs (the ones a tc redirect needs).
    pub fn ingress_qdiscs(&self) -> Vec<&String> {
        self.qdiscs
            .iter()
            .filter(|q| q.starts_with("qdisc ingress") || q.starts_with("qdisc clsact"))
            .collect()
    }
}

fn lines_sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `tap<digits>_urunc`.
pub fn is_urunc_tap(name: &str) -> bool {
    name.strip_prefix("tap")
        .and_then(|r| r.strip_suffix("_urunc"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
