//! What `ps` shows for a forked child that never execs (the VMM's init, the helper that builds
//! its root): without a new title its command line would be the shim's own, and tools that
//! count shims by command line would count it.

/// This process's argv strings (`arg_start`, `arg_end` of /proc/self/stat), read before the
/// fork; `None` when unreadable (the child then keeps the shim's command line).
pub type ArgvArea = Option<(usize, usize)>;

pub fn argv_area() -> ArgvArea {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49; `rest` starts at field 3.
    let start = fields.get(45)?.parse().ok()?;
    let end = fields.get(46)?.parse().ok()?;
    (end > start).then_some((start, end))
}

/// Overwrites this (forked, copy-on-write) process's argv strings and name with `title`
/// (NUL-terminated, as `PR_SET_NAME` reads it: at most 16 bytes).
///
/// # Safety
/// In a forked child only, with `args` read from this process before the fork: it writes the
/// process's own argv memory. Async-signal-safe.
pub unsafe fn retitle(title: &[u8], args: ArgvArea) {
    libc::prctl(
        libc::PR_SET_NAME,
        title.as_ptr().cast::<libc::c_char>() as libc::c_ulong,
        0,
        0,
        0,
    );
    let Some((start, end)) = args else {
        return;
    };
    let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
    // The argv area ends with its own NUL; the title's terminator is kept too.
    let n = title.len().min(area.len());
    area.fill(0);
    area[..n].copy_from_slice(&title[..n]);
}
