//! urunc's node configuration file, `/etc/urunc/config.toml`, read as urunc reads it.
//!
//! Keys (urunc's `pkg/unikontainers/urunc_config.go`): `[log]` level, syslog; `[timestamps]`
//! enabled, destination; `[monitors.<vmm>]` default_memory_mb, default_vcpus, path,
//! data_path, vhost; `[extra_binaries.<name>]` path, options. A missing file means urunc's
//! defaults (256 MiB, 1 vCPU for every VMM). Departures from urunc, each for a reason: a key
//! this runtime does not know is reported (the caller logs it) instead of silently ignored,
//! and a bad value is refused naming the key and the value, instead of urunc's silent
//! fallback to all defaults (a typo would otherwise give every guest other resources than
//! the operator wrote). The parsed snapshot is kept in each container's state, as urunc
//! keeps its config map in state.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::config::Hypervisor;
use crate::error::CoreError;
use crate::vmm::{DEFAULT_MEMORY_MIB, MAX_MEMORY_MIB, MAX_VCPUS, MIN_MEMORY_MIB};

/// Where urunc reads it.
pub const NODE_CONFIG_PATH: &str = "/etc/urunc/config.toml";
const MIB: i64 = 1024 * 1024;
const LOG_LEVELS: [&str; 8] = [
    "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub level: String,
    pub syslog: bool,
}

/// A log level, from the most verbose; urunc's `fatal` and `panic` are `Error` (the shim has
/// no level above error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogConfig {
    /// The level the shim logs at, by urunc's rule: `[log] level`; with containerd's `-debug`
    /// flag, the more verbose of that level and debug.
    pub fn effective_level(&self, debug_flag: bool) -> LogLevel {
        let configured = match self.level.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "warn" | "warning" => LogLevel::Warn,
            "error" | "fatal" | "panic" => LogLevel::Error,
            // "info", and what parse() never lets through.
            _ => LogLevel::Info,
        };
        if debug_flag {
            configured.min(LogLevel::Debug)
        } else {
            configured
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampsConfig {
    pub enabled: bool,
    pub destination: String,
}

/// `[monitors.<vmm>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub default_memory_mb: u64,
    pub default_vcpus: u32,
    /// The VMM binary instead of the one found in PATH.
    pub path: Option<String>,
    /// The share folder holding the VMM's data files, urunc's `data_path`: see
    /// [`MonitorConfig::qemu_data_dirs`].
    pub data_path: Option<String>,
    pub vhost: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            default_memory_mb: DEFAULT_MEMORY_MIB,
            default_vcpus: 1,
            path: None,
            data_path: None,
            vhost: false,
        }
    }
}

impl MonitorConfig {
    /// The spec's memory limit and vCPU count, or this VMM's defaults where the spec sets none.
    pub fn apply(
        &self,
        memory_limit_bytes: Option<i64>,
        vcpus: Option<u32>,
    ) -> (Option<i64>, Option<u32>) {
        let memory = memory_limit_bytes
            .filter(|&l| l > 0)
            .or(Some(self.default_memory_mb as i64 * MIB));
        (memory, vcpus.or(Some(self.default_vcpus)))
    }
}

/// qemu's data folders as urunc reads `data_path` (qemu is the only VMM that reads data files):
/// `<data_path>/qemu`, given to qemu with `-L`, and `<data_path>/seabios`, where qemu's BIOS
/// images link on Debian-like hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuDataDirs {
    pub firmware: PathBuf,
    pub seabios: PathBuf,
}

impl MonitorConfig {
    /// `None` without `data_path`: qemu reads the host's usual folders.
    pub fn qemu_data_dirs(&self) -> Option<QemuDataDirs> {
        let share = Path::new(self.data_path.as_deref()?);
        Some(QemuDataDirs {
            firmware: share.join("qemu"),
            seabios: share.join("seabios"),
        })
    }
}

/// `[extra_binaries.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraBinary {
    pub path: String,
    pub options: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub log: LogConfig,
    pub timestamps: TimestampsConfig,
    /// Keyed by urunc's VMM name (`qemu`, `firecracker`, `hvt`, `spt`, `cloud-hypervisor`).
    pub monitors: BTreeMap<String, MonitorConfig>,
    pub extra_binaries: BTreeMap<String, ExtraBinary>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            log: LogConfig {
                level: "info".into(),
                syslog: false,
            },
            timestamps: TimestampsConfig {
                enabled: false,
                destination: "/var/log/urunc/timestamps.log".into(),
            },
            monitors: BTreeMap::new(),
            extra_binaries: BTreeMap::from([(
                "virtiofsd".to_owned(),
                ExtraBinary {
                    path: "/usr/libexec/virtiofsd".into(),
                    options: "--cache always --sandbox none".into(),
                },
            )]),
        }
    }
}

/// A parsed file: the configuration and the keys it holds that this runtime does not know
/// (dotted, for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNodeConfig {
    pub config: NodeConfig,
    pub unknown_keys: Vec<String>,
}

impl NodeConfig {
    /// The settings for `hypervisor`: its `[monitors.<name>]` section or the defaults.
    pub fn monitor(&self, hypervisor: Hypervisor) -> MonitorConfig {
        self.monitors
            .get(hypervisor.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// Parses the text of the file at `path` (named in errors).
    pub fn parse(path: &str, text: &str) -> Result<ParsedNodeConfig, CoreError> {
        let table: Table =
            text.parse()
                .map_err(|e: toml::de::Error| CoreError::InvalidNodeConfig {
                    path: path.to_owned(),
                    key: String::new(),
                    value: String::new(),
                    reason: e.message().to_owned(),
                })?;
        let mut reader = Reader {
            path,
            unknown: Vec::new(),
        };
        let mut config = NodeConfig::default();
        for (section, value) in &table {
            match section.as_str() {
                "log" => reader.log(value, &mut config.log)?,
                "timestamps" => reader.timestamps(value, &mut config.timestamps)?,
                "monitors" => reader.monitors(value, &mut config.monitors)?,
                "extra_binaries" => reader.extra_binaries(value, &mut config.extra_binaries)?,
                other => reader.unknown.push(other.to_owned()),
            }
        }
        Ok(ParsedNodeConfig {
            config,
            unknown_keys: reader.unknown,
        })
    }
}

struct Reader<'a> {
    path: &'a str,
    unknown: Vec<String>,
}

impl Reader<'_> {
    fn refuse(&self, key: &str, value: &Value, reason: impl Into<String>) -> CoreError {
        CoreError::InvalidNodeConfig {
            path: self.path.to_owned(),
            key: key.to_owned(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn table<'v>(&self, key: &str, value: &'v Value) -> Result<&'v Table, CoreError> {
        value
            .as_table()
            .ok_or_else(|| self.refuse(key, value, "expected a table"))
    }

    fn bool(&self, key: &str, value: &Value) -> Result<bool, CoreError> {
        value
            .as_bool()
            .ok_or_else(|| self.refuse(key, value, "expected true or false"))
    }

    fn string(&self, key: &str, value: &Value) -> Result<String, CoreError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.refuse(key, value, "expected a string"))
    }

    fn absolute_path(&self, key: &str, value: &Value) -> Result<String, CoreError> {
        let text = self.string(key, value)?;
        if !text.starts_with('/') || text.contains('\0') {
            return Err(self.refuse(key, value, "expected an absolute path"));
        }
        Ok(text)
    }

    fn integer(&self, key: &str, value: &Value, min: i64, max: i64) -> Result<i64, CoreError> {
        match value.as_integer() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.refuse(
                key,
                value,
                format!("expected an integer from {min} to {max}"),
            )),
        }
    }

    fn log(&mut self, value: &Value, log: &mut LogConfig) -> Result<(), CoreError> {
        for (key, v) in self.table("log", value)? {
            let dotted = format!("log.{key}");
            match key.as_str() {
                "level" => {
                    let level = self.string(&dotted, v)?;
                    if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                        return Err(self.refuse(
                            &dotted,
                            v,
                            format!("expected one of {}", LOG_LEVELS.join(", ")),
                        ));
                    }
                    log.level = level;
                }
                "syslog" => log.syslog = self.bool(&dotted, v)?,
                _ => self.unknown.push(dotted),
            }
        }
        Ok(())
    }

    fn timestamps(&mut self, value: &Value, ts: &mut TimestampsConfig) -> Result<(), CoreError> {
        for (key, v) in self.table("timestamps", value)? {
            let dotted = format!("timestamps.{key}");
            match key.as_str() {
                "enabled" => ts.enabled = self.bool(&dotted, v)?,
                "destination" => ts.destination = self.absolute_path(&dotted, v)?,
                _ => self.unknown.push(dotted),
            }
        }
        Ok(())
    }

    fn monitors(
        &mut self,
        value: &Value,
        monitors: &mut BTreeMap<String, MonitorConfig>,
    ) -> Result<(), CoreError> {
        for (name, section) in self.table("monitors", value)? {
            let prefix = format!("monitors.{name}");
            if Hypervisor::parse(&prefix, name).is_err() {
                // urunc has monitors this runtime does not drive (qemu-hvf, hyperlight).
                self.unknown.push(prefix);
                continue;
            }
            let mut monitor = MonitorConfig::default();
            for (key, v) in self.table(&prefix, section)? {
                let dotted = format!("{prefix}.{key}");
                match key.as_str() {
                    "default_memory_mb" => {
                        monitor.default_memory_mb =
                            self.integer(&dotted, v, MIN_MEMORY_MIB as i64, MAX_MEMORY_MIB as i64)?
                                as u64
                    }
                    "default_vcpus" => {
                        monitor.default_vcpus =
                            self.integer(&dotted, v, 1, i64::from(MAX_VCPUS))? as u32
                    }
                    // urunc's older spelling of `path`.
                    "path" | "binary_path" => monitor.path = Some(self.absolute_path(&dotted, v)?),
                    "data_path" => monitor.data_path = Some(self.absolute_path(&dotted, v)?),
                    "vhost" => monitor.vhost = self.bool(&dotted, v)?,
                    _ => self.unknown.push(dotted),
                }
            }
            monitors.insert(name.clone(), monitor);
        }
        Ok(())
    }

    fn extra_binaries(
        &mut self,
        value: &Value,
        extra: &mut BTreeMap<String, ExtraBinary>,
    ) -> Result<(), CoreError> {
        for (name, section) in self.table("extra_binaries", value)? {
            let prefix = format!("extra_binaries.{name}");
            let mut binary = extra.get(name).cloned().unwrap_or(ExtraBinary {
                path: String::new(),
                options: String::new(),
            });
            for (key, v) in self.table(&prefix, section)? {
                let dotted = format!("{prefix}.{key}");
                match key.as_str() {
                    "path" => binary.path = self.absolute_path(&dotted, v)?,
                    "options" => binary.options = self.string(&dotted, v)?,
                    _ => self.unknown.push(dotted),
                }
            }
            extra.insert(name.clone(), binary);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URUNC_EXAMPLE: &str = r#"
[log]
level = "debug"
syslog = false

[timestamps]
enabled = true
destination = "/var/log/urunc/ts.log"

[monitors.qemu]
default_memory_mb = 512
default_vcpus = 2
path = "/opt/qemu/bin/qemu-system-x86_64"
data_path = "/opt/qemu/share"

[monitors.hvt]
default_memory_mb = 64

[extra_binaries.virtiofsd]
path = "/usr/lib/qemu/virtiofsd"
options = "--cache never"
"#;

    #[test]
    fn urunc_keys_are_read() {
        let parsed = NodeConfig::parse("/etc/urunc/config.toml", URUNC_EXAMPLE).unwrap();
        assert!(parsed.unknown_keys.is_empty(), "{:?}", parsed.unknown_keys);
        let config = parsed.config;
        assert_eq!(config.log.level, "debug");
        assert!(config.timestamps.enabled);
        let qemu = config.monitor(Hypervisor::Qemu);
        assert_eq!((qemu.default_memory_mb, qemu.default_vcpus), (512, 2));
        assert_eq!(
            qemu.path.as_deref(),
            Some("/opt/qemu/bin/qemu-system-x86_64")
        );
        assert_eq!(
            qemu.qemu_data_dirs(),
            Some(QemuDataDirs {
                firmware: "/opt/qemu/share/qemu".into(),
                seabios: "/opt/qemu/share/seabios".into(),
            })
        );
        assert_eq!(MonitorConfig::default().qemu_data_dirs(), None);
        let hvt = config.monitor(Hypervisor::Hvt);
        assert_eq!((hvt.default_memory_mb, hvt.default_vcpus), (64, 1));
        assert_eq!(
            config.monitor(Hypervisor::Firecracker),
            MonitorConfig::default()
        );
        assert_eq!(config.extra_binaries["virtiofsd"].options, "--cache never");
    }

    #[test]
    fn the_log_level_is_the_file_s_unless_debug_is_more_verbose() {
        let log = |level: &str| LogConfig {
            level: level.into(),
            syslog: false,
        };
        assert_eq!(log("warn").effective_level(false), LogLevel::Warn);
        assert_eq!(log("WARNING").effective_level(false), LogLevel::Warn);
        assert_eq!(log("fatal").effective_level(false), LogLevel::Error);
        assert_eq!(log("error").effective_level(true), LogLevel::Debug);
        assert_eq!(log("trace").effective_level(true), LogLevel::Trace);
        assert_eq!(
            NodeConfig::default().log.effective_level(false),
            LogLevel::Info
        );
    }

    #[test]
    fn defaults_apply_only_where_the_spec_sets_nothing() {
        let monitor = MonitorConfig {
            default_memory_mb: 512,
            default_vcpus: 2,
            ..MonitorConfig::default()
        };
        assert_eq!(monitor.apply(None, None), (Some(512 * MIB), Some(2)));
        assert_eq!(monitor.apply(Some(0), None), (Some(512 * MIB), Some(2)));
        assert_eq!(
            monitor.apply(Some(128 * MIB), Some(4)),
            (Some(128 * MIB), Some(4))
        );
    }

    #[test]
    fn unknown_keys_are_reported_not_refused() {
        let text = "[log]\nlevel = \"info\"\ncolour = true\n[monitors.qemu-hvf]\ndefault_vcpus = 1\n[monitors.qemu]\nturbo = 1\n[other]\nx = 1\n";
        let parsed = NodeConfig::parse("c.toml", text).unwrap();
        assert_eq!(
            parsed.unknown_keys,
            [
                "log.colour",
                "monitors.qemu.turbo",
                "monitors.qemu-hvf",
                "other"
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_by_key_and_value() {
        for (text, key, value) in [
            (
                "[monitors.qemu]\ndefault_memory_mb = 0\n",
                "monitors.qemu.default_memory_mb",
                "0",
            ),
            (
                "[monitors.qemu]\ndefault_vcpus = \"2\"\n",
                "monitors.qemu.default_vcpus",
                "\"2\"",
            ),
            (
                "[monitors.firecracker]\npath = \"bin/fc\"\n",
                "monitors.firecracker.path",
                "\"bin/fc\"",
            ),
            ("[log]\nlevel = \"loud\"\n", "log.level", "\"loud\""),
            (
                "[timestamps]\nenabled = \"yes\"\n",
                "timestamps.enabled",
                "\"yes\"",
            ),
            ("log = 3\n", "log", "3"),
        ] {
            let error = NodeConfig::parse("/etc/urunc/config.toml", text)
                .expect_err(text)
                .to_string();
            assert!(error.contains(key) && error.contains(value), "{error}");
            assert!(error.contains("/etc/urunc/config.toml"), "{error}");
        }
        let error = NodeConfig::parse("c.toml", "[log\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("c.toml"), "{error}");
    }

    #[test]
    fn the_snapshot_round_trips_through_the_state_format() {
        let config = NodeConfig::parse("c", URUNC_EXAMPLE).unwrap().config;
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<NodeConfig>(&json).unwrap(), config);
    }
}
