//! Stats: the container's cgroup metrics as containerd's own messages, which `ctr task metrics`
//! decodes: `io.containerd.cgroups.v1.Metrics` on a host with v1 hierarchies,
//! `io.containerd.cgroups.v2.Metrics` on a unified host (what the Go runc shim answers).
//!
//! Read by hand from the cgroup files: the `containerd-shim` crate's reader goes through
//! cgroups-rs (and its D-Bus stack) and answers the v1 message even on a unified host. (Link-time
//! optimisation had already dropped most of that stack: the binary shrank by only 17 KB.)

use std::io::ErrorKind;
use std::path::Path;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;

use crate::cgroup::{ProcessCgroup, V1_OOM_COUNTER, V2_OOM_COUNTER};
use crate::error::{Result, ShimError};
use crate::type_url::{self, TypeUrl};

pub fn collect(pid: u32) -> Result<Any> {
    match ProcessCgroup::of_pid(pid)? {
        cgroup @ ProcessCgroup::V1(_) => to_any(&v1_metrics(&cgroup)?),
        ProcessCgroup::V2(dir) => to_any(&v2_metrics(&dir)?),
    }
}

fn to_any<M: TypeUrl>(metrics: &M) -> Result<Any> {
    type_url::pack(metrics).map_err(|e| ShimError::encode("metrics", e))
}

type Setter<M> = fn(&mut M, u64);

const V1_MEMORY_STAT: &[(&str, Setter<v1::MemoryStat>)] = &[
    ("cache", |m, v| m.cache = v),
    ("rss", |m, v| m.rss = v),
    ("rss_huge", |m, v| m.rss_huge = v),
    ("mapped_file", |m, v| m.mapped_file = v),
    ("dirty", |m, v| m.dirty = v),
    ("writeback", |m, v| m.writeback = v),
    ("pgpgin", |m, v| m.pg_pg_in = v),
    ("pgpgout", |m, v| m.pg_pg_out = v),
    ("pgfault", |m, v| m.pg_fault = v),
    ("pgmajfault", |m, v| m.pg_maj_fault = v),
    ("inactive_anon", |m, v| m.inactive_anon = v),
    ("active_anon", |m, v| m.active_anon = v),
    ("inactive_file", |m, v| m.inactive_file = v),
    ("active_file", |m, v| m.active_file = v),
    ("unevictable", |m, v| m.unevictable = v),
    ("hierarchical_memory_limit", |m, v| {
        m.hierarchical_memory_limit = v
    }),
    ("hierarchical_memsw_limit", |m, v| {
        m.hierarchical_swap_limit = v
    }),
    ("total_cache", |m, v| m.total_cache = v),
    ("total_rss", |m, v| m.total_rss = v),
    ("total_rss_huge", |m, v| m.total_rss_huge = v),
    ("total_mapped_file", |m, v| m.total_mapped_file = v),
    ("total_dirty", |m, v| m.total_dirty = v),
    ("total_writeback", |m, v| m.total_writeback = v),
    ("total_pgpgin", |m, v| m.total_pg_pg_in = v),
    ("total_pgpgout", |m, v| m.total_pg_pg_out = v),
    ("total_pgfault", |m, v| m.total_pg_fault = v),
    ("total_pgmajfault", |m, v| m.total_pg_maj_fault = v),
    ("total_inactive_anon", |m, v| m.total_inactive_anon = v),
    ("total_active_anon", |m, v| m.total_active_anon = v),
    ("total_inactive_file", |m, v| m.total_inactive_file = v),
    ("total_active_file", |m, v| m.total_active_file = v),
    ("total_unevictable", |m, v| m.total_unevictable = v),
];

const V2_MEMORY_STAT: &[(&str, Setter<v2::MemoryStat>)] = &[
    ("anon", |m, v| m.anon = v),
    ("file", |m, v| m.file = v),
    ("kernel_stack", |m, v| m.kernel_stack = v),
    ("slab", |m, v| m.slab = v),
    ("sock", |m, v| m.sock = v),
    ("shmem", |m, v| m.shmem = v),
    ("file_mapped", |m, v| m.file_mapped = v),
    ("file_dirty", |m, v| m.file_dirty = v),
    ("file_writeback", |m, v| m.file_writeback = v),
    ("anon_thp", |m, v| m.anon_thp = v),
    ("inactive_anon", |m, v| m.inactive_anon = v),
    ("active_anon", |m, v| m.active_anon = v),
    ("inactive_file", |m, v| m.inactive_file = v),
    ("active_file", |m, v| m.active_file = v),
    ("unevictable", |m, v| m.unevictable = v),
    ("slab_reclaimable", |m, v| m.slab_reclaimable = v),
    ("slab_unreclaimable", |m, v| m.slab_unreclaimable = v),
    ("pgfault", |m, v| m.pgfault = v),
    ("pgmajfault", |m, v| m.pgmajfault = v),
    ("workingset_refault", |m, v| m.workingset_refault = v),
    ("workingset_activate", |m, v| m.workingset_activate = v),
    ("workingset_nodereclaim", |m, v| {
        m.workingset_nodereclaim = v
    }),
    ("pgrefill", |m, v| m.pgrefill = v),
    ("pgscan", |m, v| m.pgscan = v),
    ("pgsteal", |m, v| m.pgsteal = v),
    ("pgactivate", |m, v| m.pgactivate = v),
    ("pgdeactivate", |m, v| m.pgdeactivate = v),
    ("pglazyfree", |m, v| m.pglazyfree = v),
    ("pglazyfreed", |m, v| m.pglazyfreed = v),
    ("thp_fault_alloc", |m, v| m.thp_fault_alloc = v),
    ("thp_collapse_alloc", |m, v| m.thp_collapse_alloc = v),
];

const V2_CPU_STAT: &[(&str, Setter<v2::CPUStat>)] = &[
    ("usage_usec", |c, v| c.usage_usec = v),
    ("user_usec", |c, v| c.user_usec = v),
    ("system_usec", |c, v| c.system_usec = v),
    ("nr_periods", |c, v| c.nr_periods = v),
    ("nr_throttled", |c, v| c.nr_throttled = v),
    ("throttled_usec", |c, v| c.throttled_usec = v),
    ("nr_bursts", |c, v| c.nr_bursts = v),
    ("burst_usec", |c, v| c.burst_usec = v),
];

/// `memory.oom_control`: `oom_kill` is what containerd 2.x's CRI reports as
/// `container_oom_events_total`.
const V1_OOM_CONTROL: &[(&str, Setter<v1::MemoryOomControl>)] = &[
    ("oom_kill_disable", |o, v| o.oom_kill_disable = v),
    ("under_oom", |o, v| o.under_oom = v),
    ("oom_kill", |o, v| o.oom_kill = v),
];

/// `memory.events`: its `oom_kill` is `container_oom_events_total` on a unified host.
const V2_MEMORY_EVENTS: &[(&str, Setter<v2::MemoryEvents>)] = &[
    ("low", |e, v| e.low = v),
    ("high", |e, v| e.high = v),
    ("max", |e, v| e.max = v),
    ("oom", |e, v| e.oom = v),
    ("oom_kill", |e, v| e.oom_kill = v),
    ("oom_group_kill", |e, v| e.oom_group_kill = v),
];

const V1_THROTTLE: &[(&str, Setter<v1::Throttle>)] = &[
    ("nr_periods", |t, v| t.periods = v),
    ("nr_throttled", |t, v| t.throttled_periods = v),
    ("throttled_time", |t, v| t.throttled_time = v),
];

fn v1_metrics(cgroup: &ProcessCgroup) -> Result<v1::Metrics> {
    let mut metrics = v1::Metrics::new();
    if let Some(dir) = cgroup.v1_dir("pids") {
        metrics.pids = MessageField::some(v1::PidsStat {
            current: read_number(&dir.join("pids.current"))?.unwrap_or(0),
            limit: read_number(&dir.join("pids.max"))?.unwrap_or(0),
            ..Default::default()
        });
    }
    let mut cpu = v1::CPUStat::new();
    if let Some(dir) = cgroup.v1_dir("cpuacct") {
        let mut usage = v1::CPUUsage::new();
        usage.total = read_number(&dir.join("cpuacct.usage"))?.unwrap_or(0);
        usage.per_cpu = read_numbers(&dir.join("cpuacct.usage_percpu"))?;
        // cpuacct.stat counts USER_HZ ticks; the message carries nanoseconds.
        let ns_per_tick = 1_000_000_000 / clock_ticks_per_second()?;
        for_each_key(&dir.join("cpuacct.stat"), |key, ticks| match key {
            "user" => usage.user = ticks * ns_per_tick,
            "system" => usage.kernel = ticks * ns_per_tick,
            _ => {}
        })?;
        cpu.usage = MessageField::some(usage);
    }
    if let Some(dir) = cgroup.v1_dir("cpu") {
        let mut throttle = v1::Throttle::new();
        fill(&dir.join("cpu.stat"), V1_THROTTLE, &mut throttle)?;
        cpu.throttling = MessageField::some(throttle);
    }
    metrics.cpu = MessageField::some(cpu);
    if let Some(dir) = cgroup.v1_dir("memory") {
        let mut memory = v1::MemoryStat::new();
        fill(&dir.join("memory.stat"), V1_MEMORY_STAT, &mut memory)?;
        memory.usage = v1_memory_entry(dir, "memory")?;
        memory.swap = v1_memory_entry(dir, "memory.memsw")?;
        memory.kernel = v1_memory_entry(dir, "memory.kmem")?;
        memory.kernel_tcp = v1_memory_entry(dir, "memory.kmem.tcp")?;
        metrics.memory = MessageField::some(memory);
        metrics.memory_oom_control = read_keyed(&dir.join(V1_OOM_COUNTER), V1_OOM_CONTROL)?.into();
    }
    Ok(metrics)
}

/// `<prefix>.usage_in_bytes` and its siblings; absent files (no swap accounting, no kmem) are 0.
fn v1_memory_entry(dir: &Path, prefix: &str) -> Result<MessageField<v1::MemoryEntry>> {
    let read = |name: &str| read_number(&dir.join(format!("{prefix}.{name}")));
    Ok(MessageField::some(v1::MemoryEntry {
        usage: read("usage_in_bytes")?.unwrap_or(0),
        max: read("max_usage_in_bytes")?.unwrap_or(0),
        limit: read("limit_in_bytes")?.unwrap_or(0),
        failcnt: read("failcnt")?.unwrap_or(0),
        ..Default::default()
    }))
}

fn v2_metrics(dir: &Path) -> Result<v2::Metrics> {
    let mut metrics = v2::Metrics::new();
    metrics.pids = MessageField::some(v2::PidsStat {
        current: read_number(&dir.join("pids.current"))?.unwrap_or(0),
        limit: read_number(&dir.join("pids.max"))?.unwrap_or(0),
        ..Default::default()
    });
    let mut cpu = v2::CPUStat::new();
    fill(&dir.join("cpu.stat"), V2_CPU_STAT, &mut cpu)?;
    metrics.cpu = MessageField::some(cpu);
    let mut memory = v2::MemoryStat::new();
    fill(&dir.join("memory.stat"), V2_MEMORY_STAT, &mut memory)?;
    memory.usage = read_number(&dir.join("memory.current"))?.unwrap_or(0);
    memory.usage_limit = read_number(&dir.join("memory.max"))?.unwrap_or(0);
    memory.max_usage = read_number(&dir.join("memory.peak"))?.unwrap_or(0);
    memory.swap_usage = read_number(&dir.join("memory.swap.current"))?.unwrap_or(0);
    memory.swap_limit = read_number(&dir.join("memory.swap.max"))?.unwrap_or(0);
    memory.swap_max_usage = read_number(&dir.join("memory.swap.peak"))?.unwrap_or(0);
    metrics.memory = MessageField::some(memory);
    metrics.memory_events = read_keyed(&dir.join(V2_OOM_COUNTER), V2_MEMORY_EVENTS)?.into();
    Ok(metrics)
}

/// The file's text; `None` when it does not exist (a controller or an accounting the kernel
/// does not offer).
fn read_optional(file: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ShimError::io(format!("read {}", file.display()), e)),
    }
}

fn parse(file: &Path, word: &str) -> Result<u64> {
    word.parse().map_err(|_| ShimError::Cgroup {
        path: file.to_path_buf(),
        reason: format!("not a number: {word:?}"),
    })
}

/// A one-number file; `max` (no limit) reads as `None`, as does a missing file.
fn read_number(file: &Path) -> Result<Option<u64>> {
    match read_optional(file)?.as_deref().map(str::trim) {
        None | Some("max") => Ok(None),
        Some(word) => parse(file, word).map(Some),
    }
}

fn read_numbers(file: &Path) -> Result<Vec<u64>> {
    let text = read_optional(file)?.unwrap_or_default();
    text.split_whitespace()
        .map(|word| parse(file, word))
        .collect()
}

/// Calls `apply` for each `key value` line of a flat-keyed file (missing: no lines).
fn for_each_key(file: &Path, apply: impl FnMut(&str, u64)) -> Result<()> {
    let text = read_optional(file)?.unwrap_or_default();
    for_each_line(file, &text, apply)
}

/// Calls `apply` for each `key value` line of `text`, read from `file`.
fn for_each_line(file: &Path, text: &str, mut apply: impl FnMut(&str, u64)) -> Result<()> {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(ShimError::Cgroup {
                path: file.to_path_buf(),
                reason: format!("not a `key value` line: {line:?}"),
            });
        };
        apply(key, parse(file, value)?);
    }
    Ok(())
}

fn fill<M>(file: &Path, table: &[(&str, Setter<M>)], target: &mut M) -> Result<()> {
    for_each_key(file, setter(table, target))
}

/// A flat-keyed file as a message; `None` when the file does not exist (the message stays unset,
/// as the Go shim leaves it, rather than reporting zeros the kernel never counted).
fn read_keyed<M: Default>(file: &Path, table: &[(&str, Setter<M>)]) -> Result<Option<M>> {
    let Some(text) = read_optional(file)? else {
        return Ok(None);
    };
    let mut target = M::default();
    for_each_line(file, &text, setter(table, &mut target))?;
    Ok(Some(target))
}

/// Sets the field of `target` that `table` names for a key; unknown keys are ignored.
fn setter<'a, M>(table: &'a [(&str, Setter<M>)], target: &'a mut M) -> impl FnMut(&str, u64) + 'a {
    move |key, value| {
        if let Some((_, set)) = table.iter().find(|(name, _)| *name == key) {
            set(target, value);
        }
    }
}

fn clock_ticks_per_second() -> Result<u64> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => Ok(ticks as u64),
        Ok(_) => Err(ShimError::invalid(
            "sysconf(_SC_CLK_TCK)",
            "none",
            "the kernel's tick rate is needed to convert cpuacct.stat",
        )),
        Err(e) => Err(ShimError::sys("sysconf(_SC_CLK_TCK)", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
    }

    #[test]
    fn v1_metrics_come_from_each_controller() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = |name: &str| root.path().join(name);
        write(
            &dir("pids"),
            &[("pids.current", "3\n"), ("pids.max", "max\n")],
        );
        write(
            &dir("cpuacct"),
            &[
                ("cpuacct.usage", "123456789\n"),
                ("cpuacct.usage_percpu", "100 200 \n"),
                ("cpuacct.stat", "user 7\nsystem 2\n"),
            ],
        );
        write(
            &dir("cpu"),
            &[(
                "cpu.stat",
                "nr_periods 5\nnr_throttled 1\nthrottled_time 99\n",
            )],
        );
        write(
            &dir("memory"),
            &[
                (
                    "memory.stat",
                    "cache 4096\nrss 8192\ntotal_inactive_file 12\nswap 0\n",
                ),
                ("memory.usage_in_bytes", "65536\n"),
                ("memory.max_usage_in_bytes", "70000\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.failcnt", "0\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n",
                ),
            ],
        );
        let cgroup = ProcessCgroup::V1(
            ["pids", "cpuacct", "cpu", "memory"]
                .iter()
                .map(|c| (c.to_string(), dir(c)))
                .collect(),
        );
        let metrics = v1_metrics(&cgroup).expect("metrics");
        assert_eq!((metrics.pids.current, metrics.pids.limit), (3, 0));
        let tick_ns = 1_000_000_000 / clock_ticks_per_second().expect("CLK_TCK");
        assert_eq!(metrics.cpu.usage.total, 123456789);
        assert_eq!(metrics.cpu.usage.per_cpu, vec![100, 200]);
        assert_eq!(metrics.cpu.usage.user, 7 * tick_ns);
        assert_eq!(metrics.cpu.usage.kernel, 2 * tick_ns);
        assert_eq!(metrics.cpu.throttling.periods, 5);
        assert_eq!(metrics.cpu.throttling.throttled_periods, 1);
        assert_eq!(metrics.cpu.throttling.throttled_time, 99);
        assert_eq!(metrics.memory.cache, 4096);
        assert_eq!(metrics.memory.rss, 8192);
        assert_eq!(metrics.memory.total_inactive_file, 12);
        assert_eq!(metrics.memory.usage.usage, 65536);
        assert_eq!(metrics.memory.usage.max, 70000);
        assert_eq!(metrics.memory.usage.limit, 9223372036854771712);
        // No swap accounting files: zero, not an error.
        assert_eq!(metrics.memory.swap.usage, 0);
        // containerd 2.x's CRI reads `container_oom_events_total` from here.
        assert_eq!(metrics.memory_oom_control.under_oom, 1);
        assert_eq!(metrics.memory_oom_control.oom_kill, 2);

        let any = to_any(&metrics).expect("any");
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let decoded = v1::Metrics::parse_from_bytes(&any.value).expect("decode");
        assert_eq!(decoded, metrics);
    }

    #[test]
    fn v2_metrics_come_from_the_unified_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        write(
            root.path(),
            &[
                ("pids.current", "2\n"),
                ("pids.max", "64\n"),
                (
                    "cpu.stat",
                    "usage_usec 500\nuser_usec 300\nsystem_usec 200\nnr_periods 0\n",
                ),
                ("memory.stat", "anon 1024\nfile 2048\ninactive_file 512\n"),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("memory.swap.current", "0\n"),
                (
                    "memory.events",
                    "low 0\nhigh 4\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
                ),
            ],
        );
        let metrics = v2_metrics(root.path()).expect("metrics");
        assert_eq!(metrics.memory_events.max, 5);
        assert_eq!(metrics.memory_events.oom_kill, 1);
        assert_eq!((metrics.pids.current, metrics.pids.limit), (2, 64));
        assert_eq!(metrics.cpu.usage_usec, 500);
        assert_eq!(metrics.cpu.user_usec, 300);
        assert_eq!(metrics.cpu.system_usec, 200);
        assert_eq!(metrics.memory.anon, 1024);
        assert_eq!(metrics.memory.file, 2048);
        assert_eq!(metrics.memory.inactive_file, 512);
        assert_eq!(metrics.memory.usage, 4096);
        assert_eq!(metrics.memory.usage_limit, 0);
        let any = to_any(&metrics).expect("any");
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    }

    #[test]
    fn absent_event_files_leave_the_events_unset() {
        // A kernel without the file counts nothing: no message, not a message of zeros.
        let root = tempfile::tempdir().expect("tempdir");
        write(root.path(), &[("memory.current", "4096\n")]);
        let metrics = v2_metrics(root.path()).expect("metrics");
        assert!(metrics.memory_events.is_none());
        let cgroup = ProcessCgroup::V1(vec![("memory".to_string(), root.path().into())]);
        let metrics = v1_metrics(&cgroup).expect("metrics");
        assert!(metrics.memory_oom_control.is_none());
    }

    #[test]
    fn a_garbled_file_is_an_error_naming_it() {
        let root = tempfile::tempdir().expect("tempdir");
        write(root.path(), &[("cpu.stat", "usage_usec lots\n")]);
        let error = v2_metrics(root.path()).expect_err("garbled");
        let text = error.to_string();
        assert!(text.contains("cpu.stat") && text.contains("lots"), "{text}");
    }

    #[test]
    fn the_running_test_process_has_readable_metrics() {
        // This process's own cgroup, on whatever hierarchy this host has: encodes without error.
        let any = collect(std::process::id()).expect("metrics of this process");
        assert!(
            any.type_url.starts_with("io.containerd.cgroups.v"),
            "{}",
            any.type_url
        );
    }
}
