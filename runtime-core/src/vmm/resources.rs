//! Memory and vCPU numbers, from the spec's limits to what a VMM is given.
//!
//! Memory is counted in MiB (binary). urunc divides the limit by 10^6 and
//! hands the result to qemu's `-m` as MiB, so a 256Mi limit gave a 268 MiB
//! guest; we give the guest exactly the limit, rounded down to a MiB.

use crate::error::CoreError;

pub const DEFAULT_MEMORY_MIB: u64 = 256;
/// Below this no supported guest boots; a limit this small is a mistake.
pub const MIN_MEMORY_MIB: u64 = 16;
/// 1 TiB: beyond any unikernel and most hosts.
pub const MAX_MEMORY_MIB: u64 = 1024 * 1024;
/// The most vCPUs any of the VMMs here accepts for a guest.
pub const MAX_VCPUS: u32 = 255;

const MIB: i64 = 1024 * 1024;

pub(crate) fn memory_mib(limit_bytes: Option<i64>) -> Result<u64, CoreError> {
    let Some(limit) = limit_bytes.filter(|&l| l > 0) else {
        return Ok(DEFAULT_MEMORY_MIB);
    };
    let mib = (limit / MIB) as u64;
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&mib) {
        return Err(CoreError::OutOfRange {
            field: "linux.resources.memory.limit".into(),
            value: limit.into(),
            reason: format!(
                "a guest gets between {MIN_MEMORY_MIB} MiB and {MAX_MEMORY_MIB} MiB (1 TiB); this is {mib} MiB"
            ),
        });
    }
    Ok(mib)
}

pub(crate) fn vcpus(requested: Option<u32>) -> Result<u32, CoreError> {
    let count = requested.unwrap_or(1);
    if !(1..=MAX_VCPUS).contains(&count) {
        return Err(CoreError::OutOfRange {
            field: "vcpus".into(),
            value: count.into(),
            reason: format!("a guest gets between 1 and {MAX_VCPUS} vCPUs"),
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_defaults_and_bounds() {
        assert_eq!(memory_mib(None).unwrap(), 256);
        assert_eq!(memory_mib(Some(0)).unwrap(), 256);
        assert_eq!(memory_mib(Some(-1)).unwrap(), 256);
        assert_eq!(memory_mib(Some(512 * MIB + 5)).unwrap(), 512);
        for absurd in [1, 15 * MIB, 2 * 1024 * 1024 * MIB, i64::MAX] {
            let msg = memory_mib(Some(absurd)).unwrap_err().to_string();
            assert!(
                msg.contains("linux.resources.memory.limit") && msg.contains(&absurd.to_string()),
                "{msg}"
            );
        }
    }

    #[test]
    fn vcpu_bounds() {
        assert_eq!(vcpus(None).unwrap(), 1);
        assert_eq!(vcpus(Some(4)).unwrap(), 4);
        let msg = vcpus(Some(0)).unwrap_err().to_string();
        assert!(msg.contains("vcpus") && msg.contains('0'), "{msg}");
        assert!(vcpus(Some(256)).is_err());
    }
}
