//! An OCI image layout, written as one tar that `ctr images import` accepts.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::PackError;
use crate::layer::{build_layer, tar_header, LayerEntry};
use crate::reference::parse_reference;

const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// containerd's own annotation for the full image name; `ctr images import`
/// names the image after it.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for the tag.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A one-layer image of any kind (unikernel or plain container).
#[derive(Debug, Clone, Default)]
pub struct OciImage {
    /// The image name, e.g. "docker.io/library/busybox-local:latest".
    pub name: String,
    /// The OCI architecture ("amd64", "arm64").
    pub architecture: String,
    /// What the layer holds.
    pub entries: Vec<LayerEntry>,
    /// Image config labels (`config.Labels`).
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub manifest_annotations: BTreeMap<String, String>,
    /// Image config `Entrypoint` (empty: none).
    pub entrypoint: Vec<String>,
    /// Image config `Cmd` (empty: none).
    pub cmd: Vec<String>,
    /// Image config `Env`.
    pub env: Vec<String>,
    /// Image config `User` (`uid`, `name`, `uid:gid`, `name:gid`; empty: none).
    pub user: String,
}

/// What [`OciImage::write_archive`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedImage {
    /// The full image name containerd will list ("name:tag").
    pub name: String,
    /// `sha256:<hex>` of the manifest: the image's digest once imported.
    pub manifest_digest: String,
    /// `sha256:<hex>` of the (uncompressed) layer.
    pub layer_digest: String,
    /// Layer size in bytes.
    pub layer_size: u64,
    /// The archive written.
    pub archive: PathBuf,
}

struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Blob {
            digest: format!("sha256:{hex}"),
            bytes,
        }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.bytes.len()})
    }

    fn archive_path(&self) -> String {
        format!("blobs/{}", self.digest.replacen(':', "/", 1))
    }
}

impl OciImage {
    /// Writes the image as an OCI image layout tar at `out` (replacing it).
    pub fn write_archive(&self, out: &Path) -> Result<PackedImage, PackError> {
        let reference = parse_reference(&self.name)?;
        let layer = Blob::new(build_layer(&self.entries)?);
        let config = Blob::new(self.config_json(&layer.digest).to_string().into_bytes());

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": config.descriptor(MEDIA_TYPE_CONFIG),
            "layers": [layer.descriptor(MEDIA_TYPE_LAYER)],
        });
        if !self.manifest_annotations.is_empty() {
            manifest["annotations"] = json!(self.manifest_annotations);
        }
        let manifest = Blob::new(manifest.to_string().into_bytes());

        let mut manifest_descriptor = manifest.descriptor(MEDIA_TYPE_MANIFEST);
        manifest_descriptor["platform"] = json!({"architecture": self.architecture, "os": "linux"});
        manifest_descriptor["annotations"] = json!({
            ANNOTATION_CONTAINERD_NAME: reference.full,
            ANNOTATION_REF_NAME: reference.tag,
        });
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [manifest_descriptor],
        });
        let layout = json!({"imageLayoutVersion": "1.0.0"});

        let write_error = |source| PackError::Write {
            what: "OCI archive",
            path: out.to_path_buf(),
            source,
        };
        let file = File::create(out).map_err(write_error)?;
        let mut archive = tar::Builder::new(BufWriter::new(file));
        let mut files: Vec<(String, &[u8])> = Vec::new();
        let index_bytes = index.to_string().into_bytes();
        let layout_bytes = layout.to_string().into_bytes();
        files.push(("oci-layout".into(), &layout_bytes));
        files.push(("index.json".into(), &index_bytes));
        for blob in [&config, &manifest, &layer] {
            files.push((blob.archive_path(), &blob.bytes));
        }
        for directory in ["blobs/", "blobs/sha256/"] {
            let mut header = tar_header(tar::EntryType::Directory, 0o755, 0);
            archive
                .append_data(&mut header, directory, std::io::empty())
                .map_err(write_error)?;
        }
        for (path, bytes) in files {
            let mut header = tar_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
            archive
                .append_data(&mut header, path, bytes)
                .map_err(write_error)?;
        }
        let mut writer = archive.into_inner().map_err(write_error)?;
        writer.flush().map_err(write_error)?;

        Ok(PackedImage {
            name: reference.full,
            manifest_digest: manifest.digest,
            layer_digest: layer.digest,
            layer_size: layer.bytes.len() as u64,
            archive: out.to_path_buf(),
        })
    }

    fn config_json(&self, layer_digest: &str) -> Value {
        let mut config = serde_json::Map::new();
        if !self.labels.is_empty() {
            config.insert("Labels".into(), json!(self.labels));
        }
        if !self.entrypoint.is_empty() {
            config.insert("Entrypoint".into(), json!(self.entrypoint));
        }
        if !self.cmd.is_empty() {
            config.insert("Cmd".into(), json!(self.cmd));
        }
        if !self.env.is_empty() {
            config.insert("Env".into(), json!(self.env));
        }
        if !self.user.is_empty() {
            config.insert("User".into(), json!(self.user));
        }
        json!({
            "architecture": self.architecture,
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "urunc-pack"}],
        })
    }
}

/// The OCI name of the architecture this program runs on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
