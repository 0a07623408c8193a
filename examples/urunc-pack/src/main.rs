//! `urunc-pack`: pack a unikernel into an OCI image archive.
//!
//! urunc-pack --name docker.io/library/hello:latest \
//!     --file /unikernel/kernel=./bzImage --file /unikernel/initrd=./initrd.cpio \
//!     --annotation unikernelType=linux --annotation hypervisor=qemu \
//!     --annotation binary=/unikernel/kernel --annotation initrd=/unikernel/initrd \
//!     [--cmd /init]... [--labels-as-annotations] --out hello.tar

use std::path::PathBuf;
use std::process::ExitCode;

use urunc_pack::{UnikernelImage, URUNC_JSON_PATH};

const USAGE: &str = "usage: urunc-pack --name IMAGE --out ARCHIVE \
[--file ROOTFS_PATH=HOST_PATH]... [--annotation KEY=VALUE]... [--cmd ARG]... [--labels-as-annotations]
  KEY is com.urunc.unikernel.X or just X (unikernelType, hypervisor, binary, cmdline, initrd, ...)
  --cmd sets the image's Cmd, one argument per flag (urunc's linux kind runs Cmd as the guest's init)";

#[derive(Debug)]
struct Arguments {
    image: UnikernelImage,
    cmd: Vec<String>,
    out: PathBuf,
}

fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Arguments, String> {
    let mut image = UnikernelImage::default();
    let mut name = None;
    let mut out = None;
    let mut cmd = Vec::new();
    while let Some(flag) = arguments.next() {
        let mut value = || {
            arguments
                .next()
                .ok_or_else(|| format!("flag {flag} needs a value"))
        };
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--file" => {
                let (rootfs_path, host) = split_pair("--file", &value()?)?;
                image.files.push((rootfs_path, PathBuf::from(host)));
            }
            "--annotation" => image.urunc.push(split_pair("--annotation", &value()?)?),
            "--cmd" => cmd.push(value()?),
            "--labels-as-annotations" => image.labels_as_annotations = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    image.name = name.ok_or_else(|| format!("--name is required\n{USAGE}"))?;
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    Ok(Arguments { image, cmd, out })
}

fn split_pair(flag: &str, value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(left, right)| (left.to_string(), right.to_string()))
        .ok_or_else(|| format!("{flag} {value:?}: expected LEFT=RIGHT"))
}

fn main() -> ExitCode {
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("urunc-pack: {message}");
            return ExitCode::from(2);
        }
    };
    let packed = arguments.image.to_oci_image().and_then(|mut image| {
        image.cmd = arguments.cmd.clone();
        image.write_archive(&arguments.out)
    });
    match packed {
        Ok(packed) => {
            println!("wrote {}", packed.archive.display());
            println!("  image    {}", packed.name);
            println!("  manifest {}", packed.manifest_digest);
            println!(
                "  layer    {} ({} bytes)",
                packed.layer_digest, packed.layer_size
            );
            for (rootfs_path, host) in &arguments.image.files {
                println!("  file     {rootfs_path} <- {}", host.display());
            }
            println!("  file     {URUNC_JSON_PATH} (urunc configuration, base64 values)");
            if !arguments.cmd.is_empty() {
                println!("  cmd      {:?}", arguments.cmd);
            }
            println!(
                "import with: ctr images import {}",
                packed.archive.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("urunc-pack: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Arguments, String> {
        parse_arguments(words.iter().map(|word| word.to_string()))
    }

    #[test]
    fn parses_repeated_flags() {
        let arguments = parse(&[
            "--name",
            "hello:v1",
            "--file",
            "/unikernel/kernel=/tmp/k",
            "--annotation",
            "cmdline=console=ttyS0 quiet",
            "--annotation",
            "binary=/unikernel/kernel",
            "--cmd",
            "/init",
            "--out",
            "/tmp/o.tar",
        ])
        .unwrap();
        assert_eq!(arguments.cmd, vec!["/init"]);
        assert_eq!(arguments.image.name, "hello:v1");
        assert_eq!(
            arguments.image.files,
            vec![("/unikernel/kernel".into(), "/tmp/k".into())]
        );
        assert_eq!(
            arguments.image.urunc[0],
            ("cmdline".to_string(), "console=ttyS0 quiet".to_string())
        );
        assert_eq!(arguments.out, PathBuf::from("/tmp/o.tar"));
    }

    #[test]
    fn reports_missing_and_malformed_flags() {
        assert!(parse(&["--out", "o"])
            .unwrap_err()
            .contains("--name is required"));
        assert!(parse(&["--name"])
            .unwrap_err()
            .contains("--name needs a value"));
        assert!(parse(&["--name", "a", "--file", "nokey", "--out", "o"])
            .unwrap_err()
            .contains("expected LEFT=RIGHT"));
        assert!(parse(&["--bogus"])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
