//! How the serving daemon's allocator gives memory back.
//!
//! glibc raises its mmap threshold to the size of the largest block freed so far (up to 32 MiB),
//! and its trim threshold to twice that. A Create reads ELF string tables, the spec and a seccomp
//! program of tens of KiB each: afterwards every such block came from the heap, and the
//! long-lived objects allocated between them keep the heap from shrinking, for the daemon's
//! whole life. Fixed thresholds keep large transient blocks out of the heap (each one is mapped
//! and unmapped) and let freed space at the top go back at once.

/// Blocks at least this large are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: libc::c_int = 16 * 1024;
/// Free space at the top of the heap beyond this goes back to the kernel.
const TRIM_THRESHOLD: libc::c_int = 64 * 1024;

/// Fixes the allocator's thresholds; call first thing, before the daemon allocates much.
pub fn keep_heap_small() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread runs.
    let fixed = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    };
    if !fixed {
        tracing::warn!("mallopt refused the heap thresholds: the heap may stay large after Create");
    }
}
