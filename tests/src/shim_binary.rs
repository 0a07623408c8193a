//! Where the shim binary under test lives.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// The file name containerd looks for on PATH for `io.containerd.urunc.v2`.
pub const SHIM_BINARY_NAME: &str = "containerd-shim-urunc-v2";

/// The workspace root (this crate is one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// Finds `containerd-shim-urunc-v2`, trying in order: `$URUNC_SHIM_BIN`; the
/// profile directory of the running test binary (`<target>/<profile>/deps/x`
/// gives `<target>/<profile>/`), which follows `CARGO_TARGET_DIR` and
/// `--release` by construction; `$CARGO_TARGET_DIR/debug` (a relative value
/// is taken from the workspace root, where cargo is run); and
/// `<workspace>/target/debug`.
pub fn locate_shim_binary() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os("URUNC_SHIM_BIN") {
        let explicit = PathBuf::from(explicit);
        return if explicit.is_file() {
            Ok(explicit)
        } else {
            Err(HarnessError::Missing {
                what: format!("URUNC_SHIM_BIN={}", explicit.display()),
                hint: "point URUNC_SHIM_BIN at the built containerd-shim-urunc-v2".into(),
            })
        };
    }
    let candidates = candidate_paths();
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .cloned()
        .ok_or_else(|| HarnessError::Missing {
            what: format!(
                "{SHIM_BINARY_NAME} (looked in {})",
                candidates
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: "run `cargo build --workspace --bins` first".into(),
        })
}

fn candidate_paths() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // A test binary sits in <profile>/deps, a bin target in <profile>.
        for ancestor in exe.ancestors().skip(1).take(2) {
            candidates.push(ancestor.join(SHIM_BINARY_NAME));
        }
    }
    if let Some(target_dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let target_dir = workspace_root().join(target_dir);
        candidates.push(target_dir.join("debug").join(SHIM_BINARY_NAME));
    }
    candidates.push(workspace_root().join("target/debug").join(SHIM_BINARY_NAME));
    candidates.dedup();
    candidates
}
