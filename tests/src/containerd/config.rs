//! The configuration file of a private containerd.

use std::path::Path;

use super::version::ContainerdVersion;

/// How a private containerd is set up.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// Put the urunc-rs shim on containerd's PATH (and fail to start when it
    /// is not built). Off for tests that only need images or runc.
    pub urunc_shim: bool,
    /// Keep the CRI plugin (disabled by default: it needs a CNI setup and
    /// starts watchers tests do not want). Pair it with `extra_config`
    /// holding the `[plugins."io.containerd.grpc.v1.cri"]` section.
    pub cri: bool,
    /// TOML appended verbatim to the generated config.
    pub extra_config: String,
    /// Environment added to containerd's (and so to every shim's).
    pub extra_env: Vec<(String, String)>,
    /// Which containerd; `None` is the one `URUNC_TEST_CONTAINERD` selects.
    pub version: Option<ContainerdVersion>,
    /// Config files containerd merges into the generated one (its `imports`),
    /// as an operator drops a file into /etc/containerd/conf.d.
    pub imports: Vec<std::path::PathBuf>,
    /// Folders put on containerd's PATH after the urunc-rs shim's: where it finds the shims
    /// of other runtimes registered by name (`io.containerd.<name>.v2`).
    pub extra_path: Vec<std::path::PathBuf>,
}

impl Default for ContainerdOptions {
    fn default() -> Self {
        ContainerdOptions {
            urunc_shim: true,
            cri: false,
            extra_config: String::new(),
            extra_env: Vec::new(),
            version: None,
            imports: Vec::new(),
            extra_path: Vec::new(),
        }
    }
}

/// Where a private containerd keeps everything, all under one folder.
pub struct ContainerdLayout<'a> {
    pub root: &'a Path,
    pub state: &'a Path,
    pub grpc_socket: &'a Path,
    pub ttrpc_socket: &'a Path,
    pub opt: &'a Path,
}

/// The plugins that make up CRI: one in 1.6/1.7, three in 2.x.
fn cri_plugins(version: ContainerdVersion) -> &'static [&'static str] {
    match version {
        ContainerdVersion::Debian16 => &["io.containerd.grpc.v1.cri"],
        ContainerdVersion::V2 => &[
            "io.containerd.grpc.v1.cri",
            "io.containerd.cri.v1.runtime",
            "io.containerd.cri.v1.images",
        ],
    }
}

/// containerd 2.x starts NRI with a fixed socket (/var/run/nri/nri.sock): two private
/// containerds at once would collide on it, so each gets its own next to its state.
fn nri_section(layout: &ContainerdLayout, version: ContainerdVersion) -> String {
    match version {
        ContainerdVersion::Debian16 => String::new(),
        ContainerdVersion::V2 => {
            let socket = layout.state.with_file_name("nri.sock");
            format!(
                "\n[plugins.'io.containerd.nri.v1.nri']\n  socket_path = {:?}\n",
                socket.display().to_string()
            )
        }
    }
}

/// Renders containerd's config in the version `version` reads (2 for 1.6/1.7, 3 for 2.x; the
/// keys used here are the same in both).
pub fn render_config(
    layout: &ContainerdLayout,
    options: &ContainerdOptions,
    version: ContainerdVersion,
) -> String {
    let disabled = if options.cri {
        String::new()
    } else {
        cri_plugins(version)
            .iter()
            .map(|plugin| format!("{plugin:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let imports = options
        .imports
        .iter()
        .map(|path| format!("{:?}", path.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"version = {config_version}
imports = [{imports}]
root = {root:?}
state = {state:?}
disabled_plugins = [{disabled}]

[grpc]
  address = {grpc:?}

[ttrpc]
  address = {ttrpc:?}

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = {opt:?}
{nri}{extra}
"#,
        config_version = version.config_version(),
        nri = nri_section(layout, version),
        root = layout.root.display().to_string(),
        state = layout.state.display().to_string(),
        grpc = layout.grpc_socket.display().to_string(),
        ttrpc = layout.ttrpc_socket.display().to_string(),
        opt = layout.opt.display().to_string(),
        extra = options.extra_config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disables_cri_unless_asked() {
        let layout = ContainerdLayout {
            root: Path::new("/t/root"),
            state: Path::new("/t/state"),
            grpc_socket: Path::new("/t/c.sock"),
            ttrpc_socket: Path::new("/t/c.sock.ttrpc"),
            opt: Path::new("/t/opt"),
        };
        let plain = render_config(
            &layout,
            &ContainerdOptions::default(),
            ContainerdVersion::Debian16,
        );
        assert!(
            plain.contains(r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#),
            "{plain}"
        );
        assert!(plain.contains(r#"address = "/t/c.sock""#), "{plain}");
        let with_cri = render_config(
            &layout,
            &ContainerdOptions {
                cri: true,
                ..ContainerdOptions::default()
            },
            ContainerdVersion::Debian16,
        );
        assert!(with_cri.contains("disabled_plugins = []"), "{with_cri}");
        let two = render_config(
            &layout,
            &ContainerdOptions::default(),
            ContainerdVersion::V2,
        );
        assert!(two.starts_with("version = 3"), "{two}");
        assert!(
            two.contains(r#""io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images""#),
            "{two}"
        );
    }
}
