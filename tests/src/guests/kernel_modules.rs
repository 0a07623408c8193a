//! Picking kernel modules and their dependencies out of /lib/modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::command;
use crate::error::{HarnessError, Result};

/// A module to put in the initramfs: its name and uncompressed contents.
pub struct ModuleFile {
    pub name: String,
    pub contents: Vec<u8>,
}

/// `targets` and everything they depend on, dependencies first (the order
/// `insmod` needs), read from `<modules_dir>/modules.dep`. Compressed
/// modules are decompressed here, because busybox insmod loads only plain
/// `.ko` files. A target built into the kernel (`modules.builtin`) is
/// skipped.
pub fn modules_with_dependencies(modules_dir: &Path, targets: &[&str]) -> Result<Vec<ModuleFile>> {
    let dep_path = modules_dir.join("modules.dep");
    let dep_text =
        std::fs::read_to_string(&dep_path).map_err(HarnessError::io("read", &dep_path))?;
    let dependencies = parse_modules_dep(&dep_text);
    let builtin_path = modules_dir.join("modules.builtin");
    let builtin: BTreeSet<String> = std::fs::read_to_string(&builtin_path)
        .map(|text| text.lines().map(module_name).collect())
        .unwrap_or_default();

    let mut ordered: Vec<String> = Vec::new();
    for target in targets {
        let name = target.replace('-', "_");
        if builtin.contains(&name) {
            continue;
        }
        visit(&dependencies, &name, &mut ordered, &mut Vec::new())?;
    }
    ordered
        .iter()
        .map(|relative| {
            Ok(ModuleFile {
                name: module_name(relative),
                contents: read_module(&modules_dir.join(relative))?,
            })
        })
        .collect()
}

/// module name -> (its path relative to the modules dir, its dependencies'
/// paths).
type DependencyTable = BTreeMap<String, (String, Vec<String>)>;

fn parse_modules_dep(text: &str) -> DependencyTable {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(path, dependencies)| {
            let dependencies = dependencies.split_whitespace().map(String::from).collect();
            (module_name(path), (path.to_string(), dependencies))
        })
        .collect()
}

/// "kernel/drivers/net/virtio_net.ko.xz" -> "virtio_net" (the kernel treats
/// '-' and '_' in module names alike).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

fn visit(
    table: &DependencyTable,
    name: &str,
    ordered: &mut Vec<String>,
    stack: &mut Vec<String>,
) -> Result<()> {
    let (path, dependencies) = table.get(name).ok_or_else(|| HarnessError::Missing {
        what: format!("kernel module {name}"),
        hint: "install the linux-image package whose release matches the kernel".into(),
    })?;
    if ordered.contains(path) {
        return Ok(());
    }
    if stack.iter().any(|entered| entered == name) {
        return Err(HarnessError::Invalid {
            field: "modules.dep",
            value: name.to_string(),
            reason: format!("dependency cycle through {}", stack.join(" -> ")),
        });
    }
    stack.push(name.to_string());
    for dependency in dependencies {
        visit(table, &module_name(dependency), ordered, stack)?;
    }
    stack.pop();
    ordered.push(path.clone());
    Ok(())
}

fn read_module(path: &Path) -> Result<Vec<u8>> {
    let file_name = path.to_string_lossy();
    let decompressor = [(".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip")]
        .into_iter()
        .find(|(suffix, _)| file_name.ends_with(suffix))
        .map(|(_, program)| program);
    match decompressor {
        None => std::fs::read(path).map_err(HarnessError::io("read", path)),
        Some(program) => command::checked_bytes(Command::new(program).arg("-dc").arg(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_dependencies_first_without_duplicates() {
        let table = parse_modules_dep(
            "kernel/net/core/failover.ko:\n\
             kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n",
        );
        let mut ordered = Vec::new();
        visit(&table, "virtio_net", &mut ordered, &mut Vec::new()).unwrap();
        visit(&table, "virtio", &mut ordered, &mut Vec::new()).unwrap();
        let names: Vec<String> = ordered.iter().map(|path| module_name(path)).collect();
        assert_eq!(
            names,
            [
                "failover",
                "net_failover",
                "virtio_ring",
                "virtio",
                "virtio_net"
            ]
        );
    }

    #[test]
    fn names_a_missing_module() {
        let error = visit(
            &DependencyTable::new(),
            "virtio_mmio",
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("virtio_mmio"), "{error}");
    }
}
