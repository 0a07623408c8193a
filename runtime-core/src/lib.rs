//! Pure decisions for urunc-rs: the urunc configuration and what the shim
//! found on the host go in, the VMM invocation comes out, as plain data. No
//! function here spawns, writes, or reads the filesystem.

mod accel;
mod config;
mod decode;
mod drivers;
pub use drivers::{qemu::program as qemu_program, vmm_program};
mod early_exit;
pub mod elf64;
mod error;
pub mod features;
mod kinds;
pub mod knative;
mod log_uri;
mod net;
mod node_check;
mod node_config;
pub mod oci;
mod paths;
mod queue_proxy;
mod shared_fs;
mod solo5_manifest;
mod spec_resources;
mod storage;
pub mod timestamps;
mod vmm;

pub use accel::{
    choose as choose_accel, feature_to_hide, has_tcg, last_lines, needs_kvm_device, record_probe,
    recorded_probe, AccelChoice, KvmProbe, ProbeKey, MAX_HIDDEN_FEATURES,
};
pub use config::{
    Hypervisor, UnikernelType, UruncConfig, ALL_KEYS, ANNOT_BINARY, ANNOT_BLK_MNT_POINT,
    ANNOT_BLOCK, ANNOT_CMDLINE, ANNOT_HYPERVISOR, ANNOT_INITRD, ANNOT_MOUNT_ROOTFS,
    ANNOT_SOLO5_BLK_DEV, ANNOT_SOLO5_NET_DEV, ANNOT_TYPE, ANNOT_USE_DM_BLOCK, ANNOT_VERSION,
};
pub use decode::decode_value;
pub use early_exit::{early_exit_message, LineTail, EARLY_EXIT_WINDOW, TAIL_LINES};
pub use error::CoreError;
pub use kinds::supports_block;
pub use knative::{network_mode, GuestNetworkMode};
pub use log_uri::StdioTarget;
pub use net::GuestNetwork;
pub use node_check::{
    evaluate as evaluate_node, render as render_node_check, CgroupLayout, CheckRow, NodeFacts,
    Verdict, VmmFact, CHECKED_VMMS,
};
pub use node_config::{
    ExtraBinary, LogConfig, LogLevel, MonitorConfig, NodeConfig, ParsedNodeConfig, QemuDataDirs,
    TimestampsConfig, NODE_CONFIG_PATH,
};
pub use paths::rootfs_relative;
pub use queue_proxy::{is_queue_proxy, rewrite_queue_proxy_env};
pub use shared_fs::{
    choose as choose_shared_fs, virtiofsd_plan, SharedFsKind, SharedRootfs, VirtiofsdPlan,
    C_VIRTIOFSD, C_VIRTIOFSD_PID_DIR, ROOT_TAG, VIRTIOFSD, VIRTIOFSD_SANDBOX_CAPABILITIES,
    VIRTIOFSD_SERVING_CAPABILITIES,
};
pub use solo5_manifest::{elf_with_manifest, Solo5Device, Solo5DeviceKind, Solo5Manifest};
pub use spec_resources::{memory_limit_from_spec, seccomp_requested, vcpus_from_spec};
pub use storage::{
    boot_files, rootfs_storage, BootFile, RootfsMount, RootfsStorage, USE_DEVMAPPER_AS_BLOCK,
};
pub use timestamps::TimedRequest;
pub use vmm::{
    plan_vmm, supported_pairs, Accel, Arch, GracefulStop, GuestProcess, PlanFile, VmmInput,
    VmmPlan, DEFAULT_MEMORY_MIB, MAX_MEMORY_MIB, MAX_VCPUS, MIN_MEMORY_MIB,
};
