//! Reads back a written archive and checks it is the OCI layout containerd
//! imports: digests match contents, the index names the image, the layer
//! holds the files and urunc.json.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use sha2::{Digest, Sha256};
use urunc_pack::{write_oci_archive, UnikernelImage};

fn read_archive(path: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(path, bytes);
        }
    }
    files
}

fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &str) -> &'a [u8] {
    let bytes = &files[&format!("blobs/{}", digest.replacen(':', "/", 1))];
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        format!("sha256:{hex}"),
        digest,
        "blob content does not match its digest"
    );
    bytes
}

#[test]
fn writes_an_importable_layout_with_urunc_json() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("kernel.elf");
    std::fs::write(
        &kernel,
        b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x03\0rest",
    )
    .unwrap();
    let image = UnikernelImage {
        name: "docker.io/library/pvh-hello:v2".into(),
        files: vec![("/unikernel/kernel".into(), kernel)],
        urunc: vec![
            ("unikernelType".into(), "linux".into()),
            ("com.urunc.unikernel.hypervisor".into(), "qemu".into()),
            ("binary".into(), "/unikernel/kernel".into()),
        ],
        labels_as_annotations: true,
    };
    let out = dir.path().join("image.tar");
    let packed = write_oci_archive(&image, &out).unwrap();
    let files = read_archive(&out);

    let layout: serde_json::Value = serde_json::from_slice(&files["oci-layout"]).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let descriptor = &index["manifests"][0];
    assert_eq!(
        descriptor["annotations"]["io.containerd.image.name"],
        "docker.io/library/pvh-hello:v2"
    );
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        "v2"
    );
    assert_eq!(descriptor["platform"]["architecture"], "amd64");
    assert_eq!(descriptor["digest"], packed.manifest_digest.as_str());

    let manifest: serde_json::Value =
        serde_json::from_slice(blob(&files, &packed.manifest_digest)).unwrap();
    assert_eq!(
        manifest["annotations"]["com.urunc.unikernel.hypervisor"],
        "qemu"
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(blob(&files, config_digest)).unwrap();
    assert_eq!(
        config["config"]["Labels"]["com.urunc.unikernel.unikernelType"],
        "linux"
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        packed.layer_digest.as_str()
    );

    let layer = blob(&files, &packed.layer_digest);
    let mut layer_archive = tar::Archive::new(layer);
    let mut urunc_json = None;
    let mut paths = Vec::new();
    for entry in layer_archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path == "urunc.json" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            urunc_json = Some(bytes);
        }
        paths.push(path);
    }
    assert_eq!(paths, vec!["unikernel/", "unikernel/kernel", "urunc.json"]);
    let urunc: serde_json::Value = serde_json::from_slice(&urunc_json.unwrap()).unwrap();
    let binary = urunc["com.urunc.unikernel.binary"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(binary)
        .unwrap();
    assert_eq!(decoded, b"/unikernel/kernel");
}

#[test]
fn refuses_an_image_whose_file_would_replace_urunc_json() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("x");
    std::fs::write(&host, b"x").unwrap();
    let image = UnikernelImage {
        name: "x:latest".into(),
        files: vec![("/urunc.json".into(), host)],
        ..UnikernelImage::default()
    };
    let error = write_oci_archive(&image, &dir.path().join("o.tar")).unwrap_err();
    assert!(error.to_string().contains("/urunc.json"), "{error}");
}
