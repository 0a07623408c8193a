//! The manifest parser reads real solo5 unikernels as `solo5-elftool query-manifest` does.
//! Needs a solo5 build: `$URUNC_TEST_SOLO5_DIR` (a built solo5 source tree: its
//! `elftool/solo5-elftool` and `tests/*/*.{hvt,spt}`); SKIPPED without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use runtime_core::{Solo5DeviceKind, Solo5Manifest};

fn unikernels(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(tests) = std::fs::read_dir(dir.join("tests")) else {
        return found;
    };
    for test in tests.flatten() {
        for file in std::fs::read_dir(test.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("hvt" | "spt")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_solo5_test_unikernel_reads_as_solo5_elftool_reads_it() {
    let Some(dir) = std::env::var_os("URUNC_TEST_SOLO5_DIR").map(PathBuf::from) else {
        eprintln!("SKIPPED: solo5 manifests: set URUNC_TEST_SOLO5_DIR to a built solo5 tree");
        return;
    };
    let elftool = dir.join("elftool/solo5-elftool");
    let binaries = unikernels(&dir);
    assert!(
        !binaries.is_empty(),
        "no tests/*/*.hvt under {}",
        dir.display()
    );
    let mut refused = 0;
    for binary in &binaries {
        let out = Command::new(&elftool)
            .args(["query-manifest"])
            .arg(binary)
            .output()
            .expect("run solo5-elftool");
        let bytes = std::fs::read(binary).expect("read");
        let parsed = Solo5Manifest::from_elf(&binary.display().to_string(), &bytes);
        if !out.status.success() {
            // solo5's deliberately broken binaries (test_buggyelf): refused here too.
            assert!(
                parsed.is_err(),
                "{}: solo5-elftool refuses it ({}), the parser read {parsed:?}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            refused += 1;
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let expected: Vec<(String, Solo5DeviceKind)> = json["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| {
                let kind = match d["type"].as_str() {
                    Some("NET_BASIC") => Solo5DeviceKind::Net,
                    Some("BLOCK_BASIC") => Solo5DeviceKind::Block,
                    other => panic!("{}: device type {other:?}", binary.display()),
                };
                (d["name"].as_str().expect("name").to_owned(), kind)
            })
            .collect();
        let manifest = parsed
            .expect("valid")
            .expect("solo5 binaries carry a manifest");
        let got: Vec<(String, Solo5DeviceKind)> = manifest
            .devices
            .iter()
            .map(|d| (d.name.clone(), d.kind))
            .collect();
        assert_eq!(got, expected, "{}", binary.display());
    }
    eprintln!(
        "{} solo5 unikernels read as solo5-elftool reads them ({refused} refused by both)",
        binaries.len()
    );
}
