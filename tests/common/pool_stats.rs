//! This thread's stack pool for one size, for the tests that check the
//! pools' counts. Included with `#[path]`.

use gencoro::stack::{self, GuardMode, PoolStats};

/// This thread's pool for `size` usable bytes (all zero if none yet).
pub fn pool(size: usize) -> PoolStats {
    stack::pool_stats().into_iter().find(|p| p.stack_size == size).unwrap_or(PoolStats {
        stack_size: size,
        stride: 0,
        stacks_mapped: 0,
        stacks_in_use: 0,
        stacks_free: 0,
        chunks: 0,
        guard_mode: GuardMode::GuardInstall,
    })
}
