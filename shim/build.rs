//! Lays the daemon's code out hot-first, so that the code it never runs is never resident.
//!
//! The kernel maps a file-backed page, and its cached neighbours up to 64 KiB around it, on the
//! first touch: code that the shim runs once sits on pages next to code it never runs, and the
//! whole text ends up resident. `link-order.txt` lists the functions and statics a shim touches
//! over whole container lifecycles (made by `tests/examples/link_order.py`); lld places them
//! first. A stale list costs memory, nothing else: names lld does not find are skipped.
//!
//! Only for release builds of the binary linked by lld, Rust's own linker on
//! x86_64-unknown-linux-gnu since 1.90: GNU ld has no `--symbol-ordering-file`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=URUNC_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=URUNC_LINK_MAP");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    if !release || !linked_by_rust_lld() {
        return;
    }
    let order = match std::env::var_os("URUNC_LINK_ORDER") {
        Some(path) => PathBuf::from(path),
        None => manifest_dir().join("link-order.txt"),
    };
    if order.exists() {
        link_arg(&format!("--symbol-ordering-file={}", order.display()));
        link_arg("--no-warn-symbol-ordering");
    }
    // Where each function landed, for `link_order.py` (the installed binary is stripped).
    if let Some(map) = std::env::var_os("URUNC_LINK_MAP") {
        link_arg(&format!("-Map={}", Path::new(&map).display()));
    }
}

fn link_arg(arg: &str) {
    println!("cargo:rustc-link-arg-bins=-Wl,{arg}");
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}

/// Whether rustc links this target with its self-contained lld: the target is
/// x86_64-unknown-linux-gnu, rustc is 1.90 or later and ships `gcc-ld/ld.lld`, and the flags do
/// not choose another linker.
fn linked_by_rust_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if [
        "linker=",
        "linker-flavor",
        "linker-features=-lld",
        "link-self-contained=-linker",
    ]
    .iter()
    .any(|choice| flags.contains(choice))
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = |arg: &str| {
        Command::new(&rustc)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let minor = output("-V").and_then(|version| {
        let number = version.split_whitespace().nth(1)?.to_string();
        number.split('.').nth(1)?.parse::<u32>().ok()
    });
    let sysroot = output("--print=sysroot").unwrap_or_default();
    let lld = Path::new(&sysroot).join(format!("lib/rustlib/{target}/bin/gcc-ld/ld.lld"));
    minor.is_some_and(|minor| minor >= 90) && lld.exists()
}
