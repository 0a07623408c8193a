//! A unikernel image as urunc expects it: files in the rootfs, urunc's
//! configuration in `/urunc.json` (base64 values) and in the image labels
//! (plain values), as urunc's packers (bima, bunny) write them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::PackError;
use crate::layer::LayerEntry;
use crate::oci_archive::{host_architecture, OciImage, PackedImage};
use crate::urunc_config::{normalise, render_urunc_json, KEY_PREFIX};

/// Where urunc looks for its configuration when annotations do not reach it.
pub const URUNC_JSON_PATH: &str = "/urunc.json";

/// A unikernel to pack.
#[derive(Debug, Clone, Default)]
pub struct UnikernelImage {
    /// The image name, e.g. "docker.io/library/pvh-hello:latest".
    pub name: String,
    /// `(rootfs path, host file)`, e.g. `("/unikernel/kernel", "/tmp/k")`.
    pub files: Vec<(String, PathBuf)>,
    /// urunc configuration: `(key, plain value)`; the key is a full
    /// `com.urunc.unikernel.X` key or its short form `X`.
    pub urunc: Vec<(String, String)>,
    /// Also write the configuration as manifest annotations (besides the
    /// config labels and `/urunc.json`), as bunny does for runtimes that pass
    /// image annotations through.
    pub labels_as_annotations: bool,
}

impl UnikernelImage {
    /// The generic image this unikernel packs into.
    pub fn to_oci_image(&self) -> Result<OciImage, PackError> {
        let config = normalise(&self.urunc)?;
        let mut entries: Vec<LayerEntry> = self
            .files
            .iter()
            .map(|(path, host)| LayerEntry::HostFile {
                path: path.clone(),
                host: host.clone(),
            })
            .collect();
        entries.push(LayerEntry::Bytes {
            path: URUNC_JSON_PATH.to_string(),
            contents: render_urunc_json(&config),
            mode: 0o644,
        });
        let manifest_annotations = if self.labels_as_annotations {
            config.clone()
        } else {
            BTreeMap::new()
        };
        Ok(OciImage {
            name: self.name.clone(),
            architecture: self.architecture(&config)?.to_string(),
            entries,
            labels: config,
            manifest_annotations,
            ..OciImage::default()
        })
    }

    /// The OCI architecture of the unikernel binary when it is an ELF file
    /// packed in this image (as bunny does), else the host's.
    fn architecture(&self, config: &BTreeMap<String, String>) -> Result<&'static str, PackError> {
        let binary_key = format!("{KEY_PREFIX}binary");
        let binary_host_file = config
            .get(&binary_key)
            .and_then(|binary| self.files.iter().find(|(path, _)| path == binary))
            .map(|(_, host)| host);
        match binary_host_file {
            Some(host) => Ok(elf_architecture(host)?.unwrap_or_else(host_architecture)),
            None => Ok(host_architecture()),
        }
    }
}

/// The OCI architecture an ELF file is built for, `None` when it is not an
/// ELF file (a bzImage, say). 32-bit x86 maps to amd64: such kernels (PVH,
/// multiboot) are booted by x86_64 VMMs.
fn elf_architecture(host: &Path) -> Result<Option<&'static str>, PackError> {
    let read_error = |source| PackError::ReadHostFile {
        path: host.to_path_buf(),
        rootfs_path: "(the unikernel binary)".to_string(),
        source,
    };
    let mut header = Vec::with_capacity(20);
    std::fs::File::open(host)
        .map_err(read_error)?
        .take(20)
        .read_to_end(&mut header)
        .map_err(read_error)?;
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let machine_bytes = [header[18], header[19]];
    let machine = if header[5] == 2 {
        u16::from_be_bytes(machine_bytes)
    } else {
        u16::from_le_bytes(machine_bytes)
    };
    Ok(match machine {
        0x03 | 0x3e => Some("amd64"),
        0xb7 => Some("arm64"),
        _ => None,
    })
}

/// Writes `image` as an OCI image archive at `out` for `ctr images import`.
pub fn write_oci_archive(image: &UnikernelImage, out: &Path) -> Result<PackedImage, PackError> {
    image.to_oci_image()?.write_archive(out)
}
