//! The calling thread's CPU time, for the benches that time CPU rather than wall time.

/// CPU time consumed by the calling thread, in nanoseconds.
///
/// # Panics
/// When the clock is unavailable (not a Linux or macOS host).
pub fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` that outlives the call, and
    // `CLOCK_THREAD_CPUTIME_ID` is a clock id the C library knows; the call writes only `now`.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
