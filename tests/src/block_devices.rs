//! Block devices a test makes and always removes: ext4 images on loop devices
//! and a device-mapper thin pool for containerd's devmapper snapshotter
//! (containerd's docs/snapshotters/devmapper.md, "losetup" setup).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{checked, output};
use crate::error::{HarnessError, Result};

/// A loop device over a file, detached when dropped.
pub struct LoopDevice {
    pub path: PathBuf,
}

impl LoopDevice {
    pub fn attach(file: &Path) -> Result<Self> {
        let path = checked(Command::new("losetup").args(["--find", "--show"]).arg(file))?;
        Ok(LoopDevice {
            path: PathBuf::from(path.trim()),
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(error) = checked(Command::new("losetup").arg("-d").arg(&self.path)) {
            eprintln!("cleanup: detach {}: {error}", self.path.display());
        }
    }
}

/// Writes `tree` as an ext4 image of `size` (mkfs.ext4 syntax, e.g. `96M`).
pub fn ext4_image(tree: &Path, image: &Path, size: &str) -> Result<()> {
    checked(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(tree)
            .arg(image)
            .arg(size),
    )
    .map(|_| ())
}

/// Whether the kernel can make thin pools; `Err` says why not.
pub fn thin_pools_available() -> std::result::Result<(), String> {
    // Loads the target where it is a module; its failure shows in `targets` below.
    let _ = output(Command::new("modprobe").arg("dm_thin_pool"));
    match output(Command::new("dmsetup").arg("targets")) {
        Ok(out) if out.status.success() => {
            let targets = String::from_utf8_lossy(&out.stdout).into_owned();
            if targets.lines().any(|l| l.starts_with("thin-pool")) {
                Ok(())
            } else {
                Err(format!(
                    "the kernel has device-mapper but no thin-pool target: {targets:?}"
                ))
            }
        }
        Ok(out) => Err(format!(
            "the kernel has no device-mapper (dmsetup targets: {})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
        )),
        Err(error) => Err(format!("dmsetup cannot run: {error}")),
    }
}

/// A thin pool on two sparse files (data and metadata) under `dir`. Dropping
/// it removes the pool, every thin device left in it (named `<pool>-snap-*`
/// by containerd) and the loop devices.
pub struct ThinPool {
    pub name: String,
    data: Option<LoopDevice>,
    meta: Option<LoopDevice>,
}

impl ThinPool {
    pub fn create(dir: &Path, name: &str, data_bytes: u64) -> Result<Self> {
        let data_file = dir.join("pool-data");
        let meta_file = dir.join("pool-meta");
        for (file, bytes) in [(&data_file, data_bytes), (&meta_file, data_bytes / 16)] {
            let handle = std::fs::File::create(file).map_err(HarnessError::io("create", file))?;
            handle
                .set_len(bytes)
                .map_err(HarnessError::io("size", file))?;
        }
        let mut pool = ThinPool {
            name: name.to_string(),
            data: Some(LoopDevice::attach(&data_file)?),
            meta: Some(LoopDevice::attach(&meta_file)?),
        };
        let sectors = data_bytes / 512;
        // 128 sectors (64 KiB) per block, low water mark 32768 blocks: the
        // values of containerd's guide.
        let table = format!(
            "0 {sectors} thin-pool {} {} 128 32768 1 skip_block_zeroing",
            pool.meta
                .as_ref()
                .map(|l| l.path.display().to_string())
                .unwrap_or_default(),
            pool.data
                .as_ref()
                .map(|l| l.path.display().to_string())
                .unwrap_or_default(),
        );
        if let Err(error) =
            checked(Command::new("dmsetup").args(["create", name, "--table", &table]))
        {
            pool.name.clear();
            return Err(error);
        }
        Ok(pool)
    }

    /// Device-mapper devices of this pool (the pool and its thin devices) and
    /// their open counts.
    pub fn devices(&self) -> Result<Vec<(String, u32)>> {
        let listing = checked(Command::new("dmsetup").args([
            "info",
            "-c",
            "--noheadings",
            "-o",
            "name,open",
            "--separator",
            " ",
        ]))?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let (name, open) = line.trim().split_once(' ')?;
                (name.starts_with(&self.name))
                    .then(|| (name.to_string(), open.parse().unwrap_or(0)))
            })
            .collect())
    }
}

impl Drop for ThinPool {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let devices = self.devices().unwrap_or_default();
            // Thin devices first, the pool last.
            for (device, _) in devices.iter().filter(|(d, _)| d != &self.name) {
                if let Err(error) =
                    checked(Command::new("dmsetup").args(["remove", "--force", device]))
                {
                    eprintln!("cleanup: remove {device}: {error}");
                }
            }
            if let Err(error) = checked(Command::new("dmsetup").args(["remove", &self.name])) {
                eprintln!("cleanup: remove pool {}: {error}", self.name);
            }
        }
        self.data.take();
        self.meta.take();
    }
}
