//! critest's container-lifecycle (`Container`) and `Networking` groups with
//! unikernels as the test images (`-test-images-file`), handler urunc: the
//! default container is a PVH guest that halts forever under qemu, the web
//! server a Linux guest (Debian's kernel, a busybox initramfs) serving HTTP
//! on port 80. Specs a unikernel cannot pass (exec, a shell command run as
//! the container's process) are listed in [`UNSUPPORTED`] with the reason;
//! every other spec must pass, and a listed one that fails on exec must
//! fail with the shim's gRPC error.
//!
//!     sudo cargo test -p urunc-tests --test critest_unikernel -- --nocapture

use std::time::Duration;

use urunc_pack::UnikernelImage;
use urunc_tests::cri::RUNTIME_HANDLER;
use urunc_tests::critest::{
    critest_node_or_skip, keep_logs, print_to_log, render_table, run_critest, CritestRun, Outcome,
};
use urunc_tests::guests::{linux_guest, pvh_guest, PvhBehaviour};
use urunc_tests::unikernel_images::{linux_image_with_args, write_unikernel_archive, KERNEL_PATH};

/// The `Container` and `Networking` groups: their specs all begin with
/// "runtime"; the `Container Mount ...` and `Container OOM` groups do not.
const FOCUS: &str = r"\[k8s\.io\] (Container|Networking) runtime ";
const PVH_IMAGE: &str = "localhost/urunc-rs/critest-pvh:latest";
const WEB_IMAGE: &str = "localhost/urunc-rs/critest-linux-web:latest";
const PVH_MARKER: &str = "URUNC-PVH-CRITEST";
/// The shim's answer to Exec into a unikernel (gRPC UNIMPLEMENTED).
const EXEC_REFUSAL: &str =
    "Exec is not supported: a unikernel is a single guest image: there is no process inside it to exec into";
/// The shim's answer to a second networked unikernel in one pod (gRPC FAILED_PRECONDITION).
const SECOND_GUEST_REFUSAL: &str = "one pod IP cannot serve two unikernels";
const RUN_LIMIT: Duration = Duration::from_secs(20 * 60);

/// A spec a unikernel cannot pass: its name (a substring), why, and the
/// shim's error it must fail with (`None`: the spec fails by timing out).
struct Unsupported {
    spec: &'static str,
    reason: &'static str,
    refusal: Option<&'static str>,
}

const EXEC: &str = "it execs a command in the container";
const UNSUPPORTED: &[Unsupported] = &[
    Unsupported { spec: "runtime should support execSync [Conformance]", reason: EXEC, refusal: Some(EXEC_REFUSAL) },
    Unsupported { spec: "runtime should support execSync with timeout", reason: EXEC, refusal: Some(EXEC_REFUSAL) },
    Unsupported { spec: "runtime should support starting container with volume", reason: "it execs `ls` in the container to see the volume", refusal: Some(EXEC_REFUSAL) },
    Unsupported { spec: "runtime should support DNS config", reason: "it execs `cat /etc/resolv.conf` in the container", refusal: Some(EXEC_REFUSAL) },
    Unsupported { spec: "runtime should support set hostname", reason: "it execs `hostname` in the container", refusal: Some(EXEC_REFUSAL) },
    Unsupported {
        spec: "runtime should support listing stats for three created containers",
        reason: "it starts three containers in one pod: one pod IP serves one networked guest",
        refusal: Some(SECOND_GUEST_REFUSAL),
    },
    Unsupported {
        spec: "runtime should support starting container with log",
        reason: "the container's command (`echo`) must run as a process and write the log; the guest writes its own console",
        refusal: None,
    },
    Unsupported {
        spec: "runtime should support reopening container log",
        reason: "the container's command (a shell loop of `echo`) must run as a process; the guest writes its own console",
        refusal: None,
    },
];

#[test]
fn unikernels_pass_critests_lifecycle_and_networking_but_for_what_they_cannot_do() {
    let test = "unikernels_pass_critests_lifecycle_and_networking_but_for_what_they_cannot_do";
    let Some((critest, node)) =
        critest_node_or_skip(test, &["qemu-system-x86_64", "ip", "tc", "iptables"])
    else {
        return;
    };
    let scratch = node.scratch_dir();
    let guest = match linux_guest(&scratch) {
        Ok(guest) => guest,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return;
        }
    };
    // Packed as the unikraft kind: the container's command goes on the
    // guest's command line as the application's arguments (the linux kind
    // would make it the guest's init, and refuse critest's relative `sh`).
    let kernel = pvh_guest(&scratch, PvhBehaviour::HaltForever, PVH_MARKER).expect("PVH guest");
    let pvh = write_unikernel_archive(
        &scratch,
        &UnikernelImage {
            name: PVH_IMAGE.to_string(),
            files: vec![(KERNEL_PATH.to_string(), kernel)],
            urunc: [
                ("unikernelType", "unikraft"),
                ("hypervisor", "qemu"),
                ("binary", KERNEL_PATH),
            ]
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
            labels_as_annotations: false,
        },
    )
    .expect("pack the PVH image");
    node.import_image(&pvh, PVH_IMAGE)
        .expect("import the PVH image");
    let web = linux_image_with_args(&scratch, WEB_IMAGE, &guest, &[], &["urunc.httpport=80"])
        .expect("pack the Linux guest");
    node.import_image(&web, WEB_IMAGE)
        .expect("import the Linux guest");
    let images_file = scratch.join("critest-images.yaml");
    std::fs::write(
        &images_file,
        format!("defaultTestContainerImage: {PVH_IMAGE}\nwebServerTestImage: {WEB_IMAGE}\n"),
    )
    .expect("write the test images file");
    let out_dir = scratch.join("critest-unikernel");
    std::fs::create_dir_all(&out_dir).expect("critest output folder");
    let outcome = run_critest(
        &critest,
        &CritestRun {
            socket: node.containerd().address(),
            handler: RUNTIME_HANDLER,
            focus: FOCUS,
            skip: "",
            images_file: Some(&images_file),
            out_dir: &out_dir,
            limit: RUN_LIMIT,
        },
    )
    .unwrap_or_else(|e| panic!("critest with unikernel images: {e}"));
    print_to_log(&format!(
        "critest (unikernel images) -runtime-handler {RUNTIME_HANDLER}: {} specs in {:.0} s\n{}",
        outcome.specs.len(),
        outcome.took.as_secs_f64(),
        render_table(&[(RUNTIME_HANDLER, &outcome.specs)], &[])
    ));
    let mut problems = Vec::new();
    for spec in outcome
        .specs
        .iter()
        .filter(|spec| spec.outcome == Outcome::Failed)
    {
        match UNSUPPORTED
            .iter()
            .find(|known| spec.name.contains(known.spec))
        {
            Some(known) => {
                print_to_log(&format!(
                    "unsupported: {}: {}\n    critest: {}",
                    spec.name, known.reason, spec.message
                ));
                if let Some(refusal) = known
                    .refusal
                    .filter(|refusal| !spec.detail.contains(refusal))
                {
                    problems.push(format!(
                        "{}: failed without the shim's error {refusal:?}: {}",
                        spec.name, spec.message
                    ));
                }
            }
            None => problems.push(format!("{}: {}", spec.name, spec.message)),
        }
    }
    let passed = outcome
        .specs
        .iter()
        .filter(|spec| spec.outcome == Outcome::Passed)
        .count();
    if passed == 0 {
        problems.push("no spec passed".to_string());
    }
    if !problems.is_empty() {
        let kept = keep_logs(&node, &[(RUNTIME_HANDLER, outcome)]);
        panic!(
            "unikernel critest failures not explained (logs kept in {}):\n{}",
            kept.display(),
            problems.join("\n")
        );
    }
    node.stop().expect("node teardown");
}
