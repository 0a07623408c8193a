//! What the OCI spec asks of the VMM, read into `VmmInput`'s terms, so that
//! the shim does not re-derive them (and every shim path derives them alike).

use crate::oci::{Cpu, Spec};

use crate::error::CoreError;

const CPUS_FIELD: &str = "linux.resources.cpu.cpus";

/// `linux.resources.memory.limit` (bytes), for `VmmInput::memory_limit_bytes`.
pub fn memory_limit_from_spec(spec: &Spec) -> Option<i64> {
    spec.linux.resources.memory.limit
}

/// Whether the spec confines the container with seccomp (`linux.seccomp`),
/// for `VmmInput::seccomp`.
pub fn seccomp_requested(spec: &Spec) -> bool {
    spec.linux.seccomp.is_some()
}

/// vCPUs for `VmmInput::vcpus`: the CFS quota rounded up to whole CPUs
/// (`ceil(quota / period)`, what Kubernetes' `limits.cpu` becomes), else the
/// number of CPUs in the cpuset, else `None` (one vCPU). A malformed cpuset
/// is refused rather than guessed at.
pub fn vcpus_from_spec(spec: &Spec) -> Result<Option<u32>, CoreError> {
    let cpu = &spec.linux.resources.cpu;
    if let Some(vcpus) = vcpus_from_quota(cpu) {
        return Ok(Some(vcpus));
    }
    match &cpu.cpus {
        Some(cpuset) if !cpuset.trim().is_empty() => count_cpuset(cpuset).map(Some),
        _ => Ok(None),
    }
}

fn vcpus_from_quota(cpu: &Cpu) -> Option<u32> {
    let quota = u64::try_from(cpu.quota?).ok().filter(|&q| q > 0)?;
    let period = cpu.period.filter(|&p| p > 0)?;
    Some(u32::try_from(quota.div_ceil(period)).unwrap_or(u32::MAX))
}

/// Counts a Linux cpuset list such as `0-3,8,10-11`.
fn count_cpuset(cpuset: &str) -> Result<u32, CoreError> {
    let malformed = || CoreError::invalid(CPUS_FIELD, cpuset, "expected a CPU list such as 0-3,8");
    let mut count: u64 = 0;
    for range in cpuset.trim().split(',') {
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let first: u64 = first.trim().parse().map_err(|_| malformed())?;
        let last: u64 = last.trim().parse().map_err(|_| malformed())?;
        if last < first {
            return Err(malformed());
        }
        count = count.saturating_add(last - first + 1);
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: &str) -> Spec {
        let json = format!(r#"{{"ociVersion":"1.0.2","linux":{linux}}}"#);
        match Spec::from_json(json.as_bytes()) {
            Ok(spec) => spec,
            Err(e) => panic!("test spec {json} must parse: {e}"),
        }
    }

    #[test]
    fn memory_and_seccomp() {
        let s = spec(
            r#"{"resources":{"memory":{"limit":134217728}},"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}"#,
        );
        assert_eq!(memory_limit_from_spec(&s), Some(134_217_728));
        assert!(seccomp_requested(&s));
        let s = spec("{}");
        assert_eq!(memory_limit_from_spec(&s), None);
        assert!(!seccomp_requested(&s));
    }

    #[test]
    fn vcpus_from_quota_then_cpuset() {
        let s = spec(r#"{"resources":{"cpu":{"quota":150000,"period":100000,"cpus":"0-7"}}}"#);
        assert_eq!(vcpus_from_spec(&s).unwrap(), Some(2));
        let s = spec(r#"{"resources":{"cpu":{"quota":-1,"period":100000,"cpus":"0-3,8,10-11"}}}"#);
        assert_eq!(vcpus_from_spec(&s).unwrap(), Some(7));
        let s = spec(r#"{"resources":{"cpu":{"shares":1024}}}"#);
        assert_eq!(vcpus_from_spec(&s).unwrap(), None);
        assert_eq!(vcpus_from_spec(&spec("{}")).unwrap(), None);
    }

    #[test]
    fn malformed_cpuset_is_refused() {
        for bad in ["3-1", "a", "0-", "1,,2"] {
            let s = spec(&format!(r#"{{"resources":{{"cpu":{{"cpus":"{bad}"}}}}}}"#));
            let msg = vcpus_from_spec(&s).unwrap_err().to_string();
            assert!(msg.contains(CPUS_FIELD) && msg.contains(bad), "{msg}");
        }
    }
}
