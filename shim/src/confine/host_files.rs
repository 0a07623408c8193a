//! Which host files a VMM program needs inside its confined root: the program itself, every
//! shared library the dynamic loader will open for it (its interpreter and the `DT_NEEDED`
//! closure), the loader's cache, and the VMM's data directories (firmware, option ROMs,
//! loadable modules).
//!
//! Computed in the shim, before the fork, by reading ELF headers; nothing is executed (`ldd`
//! runs the loader on the binary and would need a reaped child). Libraries are searched the
//! way glibc's loader does, minus its cache: `DT_RPATH` (when there is no `DT_RUNPATH`),
//! `DT_RUNPATH`, the directories of `/etc/ld.so.conf` in order, then the default directories.
//! Each library is mounted at the path found here, which is where the cache points too.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use super::elf::{self, ElfNeeds};
use crate::error::{Result, ShimError};

pub(super) const LD_SO_CONF: &str = "/etc/ld.so.conf";
pub(super) const LD_SO_CACHE: &str = "/etc/ld.so.cache";

#[cfg(target_arch = "x86_64")]
const MULTIARCH: &str = "x86_64-linux-gnu";
#[cfg(target_arch = "aarch64")]
const MULTIARCH: &str = "aarch64-linux-gnu";

/// What the VMM program needs from the host, all absolute paths that exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostFiles {
    pub program: PathBuf,
    /// The interpreter and every library of the closure, as the loader will open them.
    pub libraries: Vec<PathBuf>,
    /// Directories mounted whole (firmware, ROMs, modules) and `/etc/ld.so.cache`'s presence.
    pub data_dirs: Vec<PathBuf>,
    pub loader_cache: Option<PathBuf>,
}

impl HostFiles {
    /// The same files with the VMM's data (firmware, option ROMs) read from `dirs` instead of
    /// the host's usual folders (urunc's `data_path`); qemu's loadable modules stay.
    pub fn with_data_dirs(mut self, dirs: &[PathBuf]) -> Self {
        let modules = qemu_modules_dir();
        self.data_dirs.retain(|dir| *dir == modules);
        self.data_dirs.extend(dirs.iter().cloned());
        self
    }
}

/// Where Debian's qemu keeps its loadable modules (display, audio, block drivers).
fn qemu_modules_dir() -> PathBuf {
    PathBuf::from(format!("/usr/lib/{MULTIARCH}/qemu"))
}

/// Finds `program` in `search_path` (a PATH value) unless it is absolute, and everything it
/// needs. A library the program itself needs and that cannot be found is an error; one that only
/// a loadable module needs is logged (qemu fails to load that module, as on the host).
pub fn discover(program: &str, search_path: &str) -> Result<HostFiles> {
    let program = locate(program, search_path)?;
    let search = LibrarySearch::from_host();
    let data_dirs = data_dirs_of(&program);
    let mut closure = Closure::default();
    closure.add_object(&search, &program, true)?;
    for module in modules_in(&data_dirs) {
        closure.add_object(&search, &module, false)?;
    }
    Ok(HostFiles {
        program,
        libraries: closure.libraries,
        data_dirs,
        loader_cache: Some(PathBuf::from(LD_SO_CACHE)).filter(|cache| cache.is_file()),
    })
}

/// `program` as an absolute path to a file, or looked up in `search_path`.
pub fn locate(program: &str, search_path: &str) -> Result<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.is_absolute() && path.is_file() {
            Ok(path)
        } else {
            Err(ShimError::invalid(
                "VMM program",
                program,
                "must be an absolute path to a file or a name found in PATH",
            ))
        };
    }
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            ShimError::invalid(
                "VMM program",
                program,
                format!("not found in PATH {search_path}"),
            )
        })
}

/// The library closure, in discovery order, without duplicates.
#[derive(Default)]
struct Closure {
    libraries: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
}

impl Closure {
    /// Adds what `object` loads, transitively. `required`: a missing library is an error;
    /// otherwise it is logged and the object's remaining needs are still added.
    fn add_object(&mut self, search: &LibrarySearch, object: &Path, required: bool) -> Result<()> {
        let mut queue = VecDeque::from([object.to_path_buf()]);
        while let Some(current) = queue.pop_front() {
            let needs = elf::read_needs(&current).map_err(|e| {
                ShimError::io(format!("read the ELF headers of {}", current.display()), e)
            })?;
            if let Some(interpreter) = &needs.interpreter {
                self.push(PathBuf::from(interpreter), &mut queue, false);
            }
            for name in &needs.needed {
                match search.find(name, &current, &needs) {
                    Some(found) => self.push(found, &mut queue, true),
                    None if required => {
                        return Err(ShimError::invalid(
                            "VMM library",
                            name,
                            format!(
                                "needed by {} and not found in {:?}",
                                current.display(),
                                search.dirs
                            ),
                        ))
                    }
                    None => tracing::debug!(
                        library = %name,
                        object = %current.display(),
                        "library of an optional VMM module not found; the module will not load"
                    ),
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, library: PathBuf, queue: &mut VecDeque<PathBuf>, follow: bool) {
        if self.seen.insert(library.clone()) {
            if follow {
                queue.push_back(library.clone());
            }
            self.libraries.push(library);
        }
    }
}

struct LibrarySearch {
    /// ld.so.conf's directories, then the defaults.
    dirs: Vec<PathBuf>,
}

impl LibrarySearch {
    fn from_host() -> Self {
        let mut dirs = Vec::new();
        read_ld_so_conf(Path::new(LD_SO_CONF), &mut dirs, 0);
        for default in default_dirs() {
            if !dirs.contains(&default) {
                dirs.push(default);
            }
        }
        LibrarySearch { dirs }
    }

    fn find(&self, name: &str, requester: &Path, needs: &ElfNeeds) -> Option<PathBuf> {
        if name.contains('/') {
            return Some(PathBuf::from(name));
        }
        let origin = requester.parent().unwrap_or(Path::new("/"));
        let own = if needs.runpath.is_empty() {
            &needs.rpath
        } else {
            &needs.runpath
        };
        let own_dirs = own
            .iter()
            .map(|dir| PathBuf::from(dir.replace("$ORIGIN", &origin.display().to_string())));
        own_dirs
            .chain(self.dirs.iter().cloned())
            .map(|dir| dir.join(name))
            .find(|candidate| {
                elf::read_needs(candidate).is_ok_and(|lib| lib.machine == needs.machine)
            })
    }
}

fn default_dirs() -> Vec<PathBuf> {
    [
        format!("/lib/{MULTIARCH}"),
        format!("/usr/lib/{MULTIARCH}"),
        "/lib64".to_string(),
        "/usr/lib64".to_string(),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// Appends the directories `conf` lists, following `include` lines (a glob in the last path
/// component only, as Debian's `ld.so.conf.d/*.conf`). Unreadable files are skipped: the host's
/// loader skips them too.
fn read_ld_so_conf(conf: &Path, dirs: &mut Vec<PathBuf>, depth: u32) {
    const MAX_INCLUDE_DEPTH: u32 = 8;
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include") {
            if depth < MAX_INCLUDE_DEPTH {
                let base = conf.parent().unwrap_or(Path::new("/"));
                for included in glob_last_component(&base.join(pattern.trim())) {
                    read_ld_so_conf(&included, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let dir = PathBuf::from(line);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
}

/// Files matching `pattern`, whose last component may hold one `*`, sorted.
fn glob_last_component(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (
        pattern.parent(),
        pattern.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut matches: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            file_name.len() >= prefix.len() + suffix.len()
                && file_name.starts_with(prefix)
                && file_name.ends_with(suffix)
        })
        .map(|entry| entry.path())
        .collect();
    matches.sort();
    matches
}

/// The data directories of a VMM, those that exist on this host, plus the directories their
/// top-level symlinks point into (Debian links ROMs across packages).
fn data_dirs_of(program: &Path) -> Vec<PathBuf> {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = if name.starts_with("qemu-system-") {
        [
            "/usr/share/qemu",
            "/usr/share/seabios",
            "/usr/lib/ipxe/qemu",
            "/usr/share/qemu-efi-aarch64",
        ]
        .into_iter()
        .map(PathBuf::from)
        .chain([qemu_modules_dir()])
        .collect()
    } else {
        Vec::new()
    };
    let mut dirs: Vec<PathBuf> = candidates.into_iter().filter(|d| d.is_dir()).collect();
    let mut linked = Vec::new();
    for dir in &dirs {
        for target_dir in symlinked_dirs(dir) {
            let covered = dirs
                .iter()
                .chain(&linked)
                .any(|d| target_dir.starts_with(d));
            if !covered {
                linked.push(target_dir);
            }
        }
    }
    dirs.extend(linked);
    dirs
}

/// Parent directories of the targets of `dir`'s symlinks.
fn symlinked_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|entry| std::fs::canonicalize(entry.path()).ok())
        .filter_map(|target| target.parent().map(Path::to_path_buf))
        .collect()
}

/// Shared objects directly inside the data directories (qemu's loadable modules).
fn modules_in(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut modules = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        modules.extend(
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "so") && path.is_file()),
        );
    }
    modules.sort();
    modules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::test_reaper::find_program;

    #[test]
    fn a_dynamic_program_brings_its_loader_and_libc() {
        let files = discover("sh", "/usr/bin:/bin").expect("discover sh");
        assert!(files.program.is_absolute());
        assert!(
            files
                .libraries
                .iter()
                .any(|l| l.to_string_lossy().contains("ld-linux")),
            "{:?}",
            files.libraries
        );
        assert!(
            files.libraries.iter().any(|l| l
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))),
            "{:?}",
            files.libraries
        );
        assert!(
            files.libraries.iter().all(|l| l.exists()),
            "{:?}",
            files.libraries
        );
    }

    #[test]
    fn qemu_brings_its_firmware_and_modules() {
        if find_program("qemu-system-x86_64").is_none() {
            skipped!(
                "SKIPPED: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
            );
            return;
        }
        let files = discover("qemu-system-x86_64", "/usr/bin").expect("discover qemu");
        assert!(
            files.data_dirs.contains(&PathBuf::from("/usr/share/qemu")),
            "{:?}",
            files.data_dirs
        );
        assert!(files.libraries.len() > 10, "{:?}", files.libraries);
    }

    #[test]
    fn data_path_folders_replace_the_host_s_qemu_data_but_not_its_modules() {
        let host = HostFiles {
            data_dirs: vec![
                "/usr/share/qemu".into(),
                "/usr/share/seabios".into(),
                qemu_modules_dir(),
            ],
            ..HostFiles::default()
        };
        let share = [PathBuf::from("/opt/share/qemu")];
        assert_eq!(
            host.with_data_dirs(&share).data_dirs,
            [qemu_modules_dir(), PathBuf::from("/opt/share/qemu")]
        );
    }

    #[test]
    fn a_missing_program_is_refused_naming_it() {
        let error = discover("no-such-vmm", "/usr/bin").expect_err("missing");
        assert!(error.to_string().contains("no-such-vmm"), "{error}");
        let error = discover("relative/vmm", "/usr/bin").expect_err("relative");
        assert!(error.to_string().contains("relative/vmm"), "{error}");
    }

    #[test]
    fn ld_so_conf_includes_are_followed_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir(&conf_d).expect("mkdir");
        std::fs::write(conf_d.join("b.conf"), "/opt/b\n").expect("write");
        std::fs::write(conf_d.join("a.conf"), "# comment\n/opt/a # trailing\n").expect("write");
        std::fs::write(conf_d.join("ignored.txt"), "/opt/ignored\n").expect("write");
        let conf = dir.path().join("ld.so.conf");
        std::fs::write(&conf, "/opt/first\ninclude conf.d/*.conf\n").expect("write");
        let mut dirs = Vec::new();
        read_ld_so_conf(&conf, &mut dirs, 0);
        assert_eq!(
            dirs,
            ["/opt/first", "/opt/a", "/opt/b"]
                .map(PathBuf::from)
                .to_vec()
        );
    }
}
