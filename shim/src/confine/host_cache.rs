//! [`discover`] once per VMM binary: reading the ELF headers of qemu, its modules and its
//! ~100 libraries was the largest share of Create (10-20 ms on the development VM). The
//! result is reused while every file it was computed from is unchanged: the program, each
//! library of the closure, the data directories (a module added or replaced changes its
//! directory) and the loader's configuration and cache (a library package's install runs
//! ldconfig). Checking that costs one `stat` per file, a fraction of a millisecond.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::host_files::{discover, locate, HostFiles, LD_SO_CACHE, LD_SO_CONF};
use crate::error::Result;

/// (device, inode, size, mtime in ns) of a file, or `None` when it is gone.
type Identity = Option<(u64, u64, u64, i128)>;

struct Entry {
    files: HostFiles,
    identities: Vec<Identity>,
}

/// Keyed by the located program and the search path (which finds its libraries' loader).
type Cache = Mutex<HashMap<(PathBuf, String), Entry>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// [`discover`], answered from the cache when none of its inputs changed.
pub fn discover_cached(program: &str, search_path: &str) -> Result<HostFiles> {
    let key = (locate(program, search_path)?, search_path.to_string());
    if let Some(entry) = lock(cache()).get(&key) {
        if identities(&entry.files) == entry.identities {
            return Ok(entry.files.clone());
        }
    }
    let files = discover(program, search_path)?;
    let entry = Entry {
        identities: identities(&files),
        files: files.clone(),
    };
    lock(cache()).insert(key, entry);
    Ok(files)
}

fn lock(cache: &Cache) -> std::sync::MutexGuard<'_, HashMap<(PathBuf, String), Entry>> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// The identity of every file `files` was computed from, in a fixed order.
fn identities(files: &HostFiles) -> Vec<Identity> {
    let loader = [Path::new(LD_SO_CONF), Path::new(LD_SO_CACHE)];
    std::iter::once(files.program.as_path())
        .chain(files.libraries.iter().map(PathBuf::as_path))
        .chain(files.data_dirs.iter().map(PathBuf::as_path))
        .chain(loader)
        .map(identity)
        .collect()
}

fn identity(path: &Path) -> Identity {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Some((meta.dev(), meta.ino(), meta.size(), mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_program_is_discovered_again() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("vmm");
        std::fs::copy("/bin/true", &program).unwrap();
        let path = program.to_str().unwrap();
        let first = discover_cached(path, "/usr/bin").unwrap();
        assert_eq!(first, discover_cached(path, "/usr/bin").unwrap());
        let key = (program.clone(), "/usr/bin".to_string());
        let before = lock(cache()).get(&key).unwrap().identities.clone();
        // A new file at the same path (an upgrade): the entry is recomputed.
        std::fs::remove_file(&program).unwrap();
        std::fs::copy("/bin/sh", &program).unwrap();
        let second = discover_cached(path, "/usr/bin").unwrap();
        assert_eq!(second, discover(path, "/usr/bin").unwrap());
        assert_ne!(before, lock(cache()).get(&key).unwrap().identities);
    }
}
