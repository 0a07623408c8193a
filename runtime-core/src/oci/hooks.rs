//! `hooks` (runtime-spec `config.md#posix-platform-hooks`).

use std::path::PathBuf;

use serde::Deserialize;

/// The hooks of each kind, in the order they run; an absent kind is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated by runtime-spec in favour of the three `create*`/`start*` kinds, still run.
    #[serde(deserialize_with = "super::null_as_empty")]
    pub prestart: Vec<Hook>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub create_container: Vec<Hook>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub start_container: Vec<Hook>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub poststart: Vec<Hook>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        [
            &self.prestart,
            &self.create_runtime,
            &self.create_container,
            &self.start_container,
            &self.poststart,
            &self.poststop,
        ]
        .iter()
        .all(|hooks| hooks.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// Must be absolute (checked where the hook runs).
    pub path: PathBuf,
    /// argv, argv\[0\] included.
    #[serde(deserialize_with = "super::null_as_empty")]
    pub args: Vec<String>,
    /// `KEY=VALUE` entries: the hook's whole environment.
    #[serde(deserialize_with = "super::null_as_empty")]
    pub env: Vec<String>,
    /// Seconds; must be greater than zero when present (checked where the hook runs).
    pub timeout: Option<i64>,
}
