//! The process allocator: mimalloc, with freed memory kept for reuse longer than its default.
//!
//! Ingest allocates a couple of dozen strings per trace and the store frees a whole memtable (hundreds of MiB)
//! each time it seals one; by default mimalloc returns freed pages to the OS after a second, so the next memtable
//! faults them in again and the kernel zeroes them (a profile of `cts serve` under load showed about a tenth of
//! its CPU in page faults). Keeping freed memory for a minute lets the store reuse it; an idle server still hands
//! it back.

use libmimalloc_sys::{mi_option_set, mi_option_t};
use std::ffi::c_long;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc v3's `mimalloc.h` (the Rust bindings do not name it): milliseconds before
/// freed memory is returned to the OS (its default 1000; arenas wait a multiple of it).
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// How long freed memory is kept for reuse, in milliseconds.
const PURGE_DELAY_MS: c_long = 60_000;

/// Applies the tuning above, unless `MIMALLOC_PURGE_DELAY` is set (then it rules, as mimalloc documents).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store mimalloc allows at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The purge delay in force, in milliseconds.
    fn purge_delay_ms() -> c_long {
        // SAFETY: reading an option has no preconditions.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_purge_delay_option_is_the_one_tuned() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's documented default: a wrong option number reads something else.
        assert_eq!(purge_delay_ms(), 1000);
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
