//! [`discover`] once per VMM binary: reading the ELF headers of qemu, its modules and its
//! ~100 libraries was the largest share of Create (10-20 ms on the development VM). The
//! result is reused while what it was computed from is unchanged: the program, the folders
//! its libraries are in (by the paths the loader opens and by the files those name), the
//! data directories (a module added or replaced changes its directory) and the loader's
//! configuration and cache (a library package's install runs ldconfig).
//!
//! Folders, not each library: a library installed, replaced or removed is a directory entry
//! made, renamed over or unlinked, which changes its folder's mtime; dpkg, rpm, install(1)
//! and `ln -sf` all replace that way. Only an overwrite in place (plain `cp` onto a library)
//! keeps the folder, and the entry then still lists that path, which the VMM's root mounts
//! with its new content; what the new content needs beyond the old closure is found at the
//! next change of its folder or of the loader's cache. qemu's 90 libraries live in 3 folders:
//! 10 `stat`s instead of 97, 0.45 ms less of Create here.
//!
//! A shim per pod serves one Create, so the result is also kept on disk, in
//! `/run/urunc-rs/.host-files/` (root's, beside the containers' state; a containerd
//! namespace cannot start with a dot), for the next shim to check and reuse. A file that
//! does not read, parse or match is recomputed and replaced; one that cannot be written
//! is logged and the Create goes on: the cache only saves time.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::host_files::{discover, locate, HostFiles, LD_SO_CACHE, LD_SO_CONF};
use crate::error::Result;

/// (device, inode, size, mtime in ns) of a file, or `None` when it is gone.
type Identity = Option<(u64, u64, u64, i128)>;

#[derive(Serialize, Deserialize)]
struct Entry {
    /// The key, kept in the file so a file is only ever used for its own program.
    program: PathBuf,
    files: HostFiles,
    /// What the entry stays valid with (see the module), in a fixed order.
    watched: Vec<PathBuf>,
    identities: Vec<Identity>,
}

impl Entry {
    fn of(program: PathBuf, files: HostFiles) -> Self {
        let watched = watched_paths(&files);
        Entry {
            program,
            identities: identities(&watched),
            watched,
            files,
        }
    }

    fn is_current(&self) -> bool {
        identities(&self.watched) == self.identities
    }
}

const DISK_CACHE: &str = "/run/urunc-rs/.host-files";

/// Keyed by the located program: the search path only locates it (libraries are searched
/// as the loader does), so every containerd's PATH shares one entry per VMM binary.
type Cache = Mutex<HashMap<PathBuf, Entry>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// [`discover`], answered from the cache when none of its inputs changed.
pub fn discover_cached(program: &str, search_path: &str) -> Result<HostFiles> {
    discover_in(Path::new(DISK_CACHE), program, search_path)
}

fn discover_in(disk: &Path, program: &str, search_path: &str) -> Result<HostFiles> {
    let key = locate(program, search_path)?;
    if let Some(entry) = lock(cache()).get(&key).filter(|entry| entry.is_current()) {
        return Ok(entry.files.clone());
    }
    let file = disk.join(file_name(&key));
    let entry = match read_entry(&file, &key) {
        Some(entry) => entry,
        None => {
            let entry = Entry::of(key.clone(), discover(program, search_path)?);
            if let Err(error) = write_entry(disk, &file, &entry) {
                tracing::warn!(file = %file.display(), %error, "cannot keep the VMM's host files for the next shim");
            }
            entry
        }
    };
    let files = entry.files.clone();
    lock(cache()).insert(key, entry);
    Ok(files)
}

/// The entry on disk for `key`, when it is there, whole, for that key and current.
fn read_entry(file: &Path, key: &Path) -> Option<Entry> {
    let bytes = std::fs::read(file).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    (entry.program == key && entry.is_current()).then_some(entry)
}

/// Written whole (temporary file, then rename), as the containers' state is.
fn write_entry(disk: &Path, file: &Path, entry: &Entry) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(disk)?;
    let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let temporary = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, file)?;
    // Only on a miss (a new or changed binary): cheap enough to keep the folder to the VMMs
    // that still exist.
    remove_entries_of_gone_programs(disk, file);
    Ok(())
}

/// The program field of an entry, all that pruning reads.
#[derive(Deserialize)]
struct EntryProgram {
    program: PathBuf,
}

/// Removes the entries (other than `kept`) whose program no longer exists: a VMM installed
/// under a versioned path and then removed would otherwise leave its entry for good. A
/// failure is logged and left for the next miss: the cache only saves time.
fn remove_entries_of_gone_programs(disk: &Path, kept: &Path) {
    let entries = match std::fs::read_dir(disk) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %disk.display(), %error, "cannot list the VMMs' host files");
            return;
        }
    };
    for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
        if path == kept || path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let gone = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<EntryProgram>(&bytes).ok())
            .is_some_and(|entry| !entry.program.exists());
        if gone {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), %error, "cannot remove the host files of a VMM that is gone");
            }
        }
    }
}

/// One file per program: its path with `/` spelled `_`, then a hash of the path (a
/// collision only costs a recomputation: the file names its key).
fn file_name(program: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    program.hash(&mut hasher);
    let readable: String = program
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{readable}-{:016x}.json", hasher.finish())
}

fn lock(cache: &Cache) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// The program, the folders of its libraries (of the paths the loader opens and of the files
/// those resolve to, once, here), its data directories and the loader's files.
fn watched_paths(files: &HostFiles) -> Vec<PathBuf> {
    let mut folders = std::collections::BTreeSet::new();
    for library in &files.libraries {
        folders.extend(library.parent().map(Path::to_path_buf));
        let resolved = std::fs::canonicalize(library).ok();
        folders.extend(
            resolved
                .as_deref()
                .and_then(Path::parent)
                .map(Path::to_path_buf),
        );
    }
    let loader = [PathBuf::from(LD_SO_CONF), PathBuf::from(LD_SO_CACHE)];
    std::iter::once(files.program.clone())
        .chain(folders)
        .chain(files.data_dirs.iter().cloned())
        .chain(loader)
        .collect()
}

fn identities(watched: &[PathBuf]) -> Vec<Identity> {
    watched.iter().map(|path| identity(path)).collect()
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
        let disk = dir.path().join("cache");
        let first = discover_in(&disk, path, "/usr/bin").unwrap();
        assert_eq!(first, discover_in(&disk, path, "/usr/bin").unwrap());
        let key = program.clone();
        let before = lock(cache()).get(&key).unwrap().identities.clone();
        // A new file at the same path (an upgrade): the entry is recomputed.
        std::fs::remove_file(&program).unwrap();
        std::fs::copy("/bin/sh", &program).unwrap();
        let second = discover_in(&disk, path, "/usr/bin").unwrap();
        assert_eq!(second, discover(path, "/usr/bin").unwrap());
        assert_ne!(before, lock(cache()).get(&key).unwrap().identities);
    }

    /// `program`, and `lib/libx.so.1`, a link to `store/libx.so.1.2`: a library as the
    /// loader opens it, in another folder than its file.
    fn files_with_a_linked_library(dir: &Path) -> HostFiles {
        let (lib, store) = (dir.join("lib"), dir.join("store"));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy("/bin/true", dir.join("program")).unwrap();
        std::fs::write(store.join("libx.so.1.2"), b"v1").unwrap();
        std::os::unix::fs::symlink(store.join("libx.so.1.2"), lib.join("libx.so.1")).unwrap();
        HostFiles {
            program: dir.join("program"),
            libraries: vec![lib.join("libx.so.1")],
            data_dirs: Vec::new(),
            loader_cache: None,
        }
    }

    /// Replaces `path` as installers do: a new file renamed over it. After a tick of the
    /// kernel's coarse clock, which stamps directories on kernels without multigrain
    /// timestamps (before 6.13): a change in the same tick as the entry's stat keeps the
    /// mtime there (the loader cache's change after an install is then what shows it).
    fn replace_by_rename(path: &Path, contents: &[u8]) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new = path.with_extension("new");
        std::fs::write(&new, contents).unwrap();
        std::fs::rename(&new, path).unwrap();
    }

    #[test]
    fn one_stat_per_folder_of_the_libraries_and_of_the_files_they_link_to() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_with_a_linked_library(dir.path());
        let entry = Entry::of(files.program.clone(), files);
        let watched: Vec<&Path> = entry.watched.iter().map(PathBuf::as_path).collect();
        let program = dir.path().join("program");
        let (lib, store) = (dir.path().join("lib"), dir.path().join("store"));
        let store = std::fs::canonicalize(store).unwrap();
        assert_eq!(watched[0], program.as_path());
        assert!(watched.contains(&lib.as_path()), "{watched:?}");
        assert!(watched.contains(&store.as_path()), "{watched:?}");
        assert!(
            !watched.iter().any(|p| p.ends_with("libx.so.1")),
            "{watched:?}"
        );
        assert!(entry.is_current());
    }

    #[test]
    fn a_library_replaced_or_added_beside_the_closure_makes_the_entry_stale() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_with_a_linked_library(dir.path());
        let entry = Entry::of(files.program.clone(), files.clone());
        // The file the link names, replaced in its own folder (a package upgrade).
        replace_by_rename(&dir.path().join("store/libx.so.1.2"), b"v2");
        assert!(
            !entry.is_current(),
            "the linked file's folder is not watched"
        );

        let entry = Entry::of(files.program.clone(), files.clone());
        // A new library beside the closure's (it may now be the one the loader finds).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("lib/liby.so.1"), b"new").unwrap();
        assert!(!entry.is_current(), "the library's folder is not watched");

        let entry = Entry::of(files.program.clone(), files);
        replace_by_rename(&dir.path().join("program"), b"other");
        assert!(!entry.is_current(), "the program is not watched");
    }

    #[test]
    fn a_miss_removes_the_entries_of_programs_that_are_gone_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("cache");
        let (gone, kept, new) = (
            dir.path().join("gone"),
            dir.path().join("kept"),
            dir.path().join("new"),
        );
        for program in [&gone, &kept, &new] {
            std::fs::copy("/bin/true", program).unwrap();
        }
        for program in [&gone, &kept] {
            discover_in(&disk, program.to_str().unwrap(), "/usr/bin").unwrap();
        }
        std::fs::remove_file(&gone).unwrap();
        discover_in(&disk, new.to_str().unwrap(), "/usr/bin").unwrap();
        assert!(
            !disk.join(file_name(&gone)).exists(),
            "the gone VMM's entry stays"
        );
        assert!(disk.join(file_name(&kept)).exists());
        assert!(disk.join(file_name(&new)).exists());
    }

    #[test]
    fn the_next_shim_reads_the_entry_from_disk_and_refuses_a_stale_or_foreign_one() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("vmm");
        std::fs::copy("/bin/true", &program).unwrap();
        let path = program.to_str().unwrap();
        let disk = dir.path().join("cache");
        let files = discover_in(&disk, path, "/usr/bin").unwrap();
        let key = program.clone();
        let file = disk.join(file_name(&program));
        // What a new shim finds: the entry on disk, current.
        assert_eq!(read_entry(&file, &key).unwrap().files, files);
        // Another key's file is not used for this one.
        let other = dir.path().join("other");
        assert!(read_entry(&file, &other).is_none());
        // A replaced program makes the file stale; a torn file does not parse.
        std::fs::remove_file(&program).unwrap();
        std::fs::copy("/bin/sh", &program).unwrap();
        assert!(read_entry(&file, &key).is_none());
        std::fs::write(&file, b"{\"program\":").unwrap();
        assert!(read_entry(&file, &key).is_none());
    }
}
