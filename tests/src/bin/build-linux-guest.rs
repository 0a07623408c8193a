//! `build-linux-guest <dir>`: writes the test Linux guest (Debian's cloud
//! kernel copied as `<dir>/kernel`, the busybox initramfs as
//! `<dir>/initrd.cpio`) and prints, as shell assignments, the paths, the
//! kernel release and a kernel command line prefix for qemu/TCG.

use std::path::PathBuf;
use std::process::ExitCode;

use urunc_tests::guests::linux::{
    kernel_cmdline, linux_guest, HTTP_ANSWER, HTTP_PORT, READY_MARKER,
};
use urunc_tests::HarnessError;

fn build(dir: PathBuf) -> Result<(), HarnessError> {
    std::fs::create_dir_all(&dir).map_err(HarnessError::io("create", &dir))?;
    let guest = linux_guest(&dir)?;
    let kernel = dir.join("kernel");
    std::fs::copy(&guest.kernel, &kernel)
        .map_err(HarnessError::io("copy the kernel to", &kernel))?;
    println!("KERNEL={}", kernel.display());
    println!("INITRD={}", guest.initrd.display());
    println!("KERNEL_RELEASE={}", guest.kernel_release);
    println!("KERNEL_CMDLINE='{}'", kernel_cmdline(None, false)?);
    println!("READY_MARKER={READY_MARKER}");
    println!("HTTP_PORT={HTTP_PORT}");
    println!("HTTP_ANSWER={HTTP_ANSWER}");
    Ok(())
}

fn main() -> ExitCode {
    let mut arguments = std::env::args().skip(1);
    let (Some(dir), None) = (arguments.next(), arguments.next()) else {
        eprintln!("usage: build-linux-guest <dir>");
        return ExitCode::from(2);
    };
    match build(PathBuf::from(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("build-linux-guest: {error}");
            ExitCode::FAILURE
        }
    }
}
