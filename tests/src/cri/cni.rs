//! A private CNI network for one CRI node: a conf dir holding one conflist
//! (Debian's `bridge` plugin with `host-local` IPAM) on a bridge and a
//! subnet of its own, with host-local's allocations in a private folder.
//!
//! containerd's CRI adds the `loopback` plugin to every pod by itself, so
//! the conflist only names the pod network.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::subnet::SubnetClaim;
use crate::command;
use crate::error::{HarnessError, Result};

/// Where Debian's containernetworking-plugins installs the plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The plugins this network needs.
pub const CNI_PLUGINS: &[&str] = &["bridge", "host-local", "loopback"];

/// The plugin that maps pod ports to host ports (iptables DNAT), chained
/// only for nodes that ask for it: it leaves its top-level iptables chains
/// (`CNI-HOSTPORT-*`) on the host after its last pod is gone.
pub const PORTMAP_PLUGIN: &str = "portmap";

/// The CNI configuration and host state of one node; dropping it removes
/// the bridge, the folders and the subnet claim.
pub struct CniNetwork {
    dir: Option<tempfile::TempDir>,
    network_name: String,
    bridge: String,
    subnet: SubnetClaim,
    port_mapping: bool,
}

impl CniNetwork {
    /// Checks the plugins, claims a subnet and writes the conflist.
    pub fn create() -> Result<Self> {
        Self::create_with(false)
    }

    /// Like [`create`](Self::create); with `port_mapping`, the conflist
    /// chains [`PORTMAP_PLUGIN`] so pods' `hostPort`s are served.
    pub fn create_with(port_mapping: bool) -> Result<Self> {
        let portmap = port_mapping.then_some(PORTMAP_PLUGIN);
        for plugin in CNI_PLUGINS.iter().chain(portmap.iter()) {
            let path = Path::new(CNI_BIN_DIR).join(plugin);
            if !path.is_file() {
                return Err(HarnessError::Missing {
                    what: path.display().to_string(),
                    hint: "apt-get install containernetworking-plugins".into(),
                });
            }
        }
        let subnet = SubnetClaim::claim()?;
        let dir = tempfile::Builder::new()
            .prefix("urunc-cni-")
            .tempdir()
            .map_err(HarnessError::io(
                "create temporary folder in",
                std::env::temp_dir(),
            ))?;
        // Linux limits interface names to 15 bytes.
        let bridge = format!("urcri{}", subnet.third_octet());
        let network_name = format!("urunc-cri-{}", subnet.third_octet());
        let network = CniNetwork {
            dir: Some(dir),
            network_name,
            bridge,
            subnet,
            port_mapping,
        };
        for folder in [network.conf_dir(), network.ipam_dir()] {
            std::fs::create_dir_all(&folder).map_err(HarnessError::io("create", &folder))?;
        }
        let conflist = network.conf_dir().join("10-urunc-cri.conflist");
        std::fs::write(&conflist, network.conflist())
            .map_err(HarnessError::io("write", &conflist))?;
        Ok(network)
    }

    fn root(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |dir| dir.path())
    }

    /// The folder CRI's `cni.conf_dir` points at.
    pub fn conf_dir(&self) -> PathBuf {
        self.root().join("net.d")
    }

    /// host-local's allocation records.
    pub fn ipam_dir(&self) -> PathBuf {
        self.root().join("ipam")
    }

    /// The bridge the pods' veths are enslaved to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The pod subnet, `10.88.X.0/24`.
    pub fn cidr(&self) -> String {
        self.subnet.cidr()
    }

    /// The CNI network name (host-local keys its records by it).
    pub fn network_name(&self) -> &str {
        &self.network_name
    }

    /// The host-side interfaces enslaved to the bridge (one veth per pod).
    pub fn bridge_ports(&self) -> Result<Vec<String>> {
        if !Path::new("/sys/class/net").join(&self.bridge).exists() {
            return Ok(Vec::new());
        }
        let listing = command::checked(Command::new("ip").args([
            "-o",
            "link",
            "show",
            "master",
            &self.bridge,
        ]))?;
        Ok(listing
            .lines()
            .filter_map(|line| line.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_string())
            .collect())
    }

    /// The IPs host-local still has allocated (a leak when no pod runs).
    pub fn allocated_ips(&self) -> Result<Vec<String>> {
        let records = self.ipam_dir().join(&self.network_name);
        let entries = match std::fs::read_dir(&records) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(HarnessError::io("list", records)(error)),
        };
        let mut allocated = Vec::new();
        for entry in entries {
            let entry = entry.map_err(HarnessError::io("list", &records))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // host-local also keeps `last_reserved_ip.0` and a `lock` file.
            if name.parse::<std::net::Ipv4Addr>().is_ok() {
                allocated.push(name);
            }
        }
        allocated.sort();
        Ok(allocated)
    }

    fn conflist(&self) -> String {
        let mut plugins = vec![self.bridge_plugin()];
        if self.port_mapping {
            plugins.push(serde_json::json!({
                "type": PORTMAP_PLUGIN,
                "capabilities": { "portMappings": true },
            }));
        }
        serde_json::json!({
            "cniVersion": "0.4.0",
            "name": self.network_name,
            "plugins": plugins,
        })
        .to_string()
    }

    fn bridge_plugin(&self) -> serde_json::Value {
        serde_json::json!({
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": self.subnet.cidr(), "gateway": self.subnet.gateway().to_string() }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": self.ipam_dir(),
                },
        })
    }

    /// Removes the bridge (the bridge plugin never does), the folders and
    /// the claim; every step runs, failures are returned together.
    pub fn remove(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            if let Err(error) =
                command::checked(Command::new("ip").args(["link", "del", &self.bridge]))
            {
                failures.push(format!("delete bridge {}: {error}", self.bridge));
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(error) = dir.close() {
                failures.push(format!("remove {}: {error}", path.display()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Cleanup(failures))
        }
    }
}

impl Drop for CniNetwork {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("CniNetwork({}): {error}", self.network_name);
        }
    }
}
