//! Stack memory for coroutines: a per-thread pool of guarded stacks.
//!
//! This is the only module that maps memory. Everything above it sees a
//! `Stack`: a usable region `[limit, base)` with a guard page just below
//! `limit`, returned to its thread's pool when dropped.
//!
//! # Layout
//!
//! Stacks are carved out of large *chunks*. A chunk is one anonymous
//! `mmap` holding `n` slots of `guard + size` bytes each:
//!
//! ```text
//! chunk start                                                chunk end
//! | guard | usable stack 0 | guard | usable stack 1 | ... | guard | usable n-1 |
//!         ^limit          ^base
//! ```
//!
//! Guard pages are installed with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+),
//! which marks pages as guards *without* splitting the mapping, so a million
//! stacks cost a few dozen entries of `vm.max_map_count`. Where the kernel
//! lacks it, guards fall back to `mprotect(PROT_NONE)`, which splits the
//! mapping; when the map-count limit is then reached, allocation returns
//! [`StackError::MapCountLimit`] instead of crashing. The chunk is mapped with
//! `MAP_NORESERVE` and `MADV_NOHUGEPAGE`, so a stack costs resident memory only
//! for the pages it really touches, usually one.
//!
//! # Reuse
//!
//! A dropped stack goes back to its thread's pool, warmest first: the stack
//! freed last waits out of the free list (the *hot* stack, in a plain
//! thread-local, so taking it back touches no pool) until the next
//! allocation of its size, or until another stack is freed and takes its
//! place, when it goes on the free list (last in, first out). Reuse costs a
//! few nanoseconds; a fresh `mmap` costs microseconds. Pages a stack touched stay resident while
//! it sits in the pool.
//!
//! # Threads that exit
//!
//! A thread's pool is destroyed with its thread-locals. Chunks with no stack
//! lent out are unmapped then. A chunk with stacks still lent out (to a
//! generator in a thread-local destroyed after the pool's, say) stays
//! mapped, its free stacks' memory given back to the kernel, until the last
//! of those stacks is dropped; then it is unmapped. A stack that is never
//! dropped (`mem::forget`) keeps its chunk for good: that leak is the
//! caller's, and overflows on it are still reported.
//!
//! # Overflow
//!
//! Every chunk is registered with a `SIGSEGV` handler (see `overflow.rs`),
//! in a table that grows as needed, so no number of chunks or threads
//! leaves an overflow unreported. A fault inside a guard page prints
//! `gencoro: coroutine stack overflow: ...` with the stack size to stderr and
//! aborts the process. Faults elsewhere are passed on to the handler that was
//! installed before (normally the standard library's).

mod overflow;
mod pool;

use std::fmt;

pub use pool::{PoolStats, RawStack, cap_mappings_for_tests, force_mprotect_guards, pool_stats};
pub(crate) use pool::{Stack, round_size};

/// Default usable size of a coroutine stack: 128 KiB.
///
/// Only the pages a coroutine touches become resident, so the size costs
/// address space, not memory. Change it per generator with
/// [`GeneratorBuilder::stack_size`](crate::GeneratorBuilder::stack_size), or
/// per event loop with
/// [`runtime::Builder::stack_size`](crate::runtime::Builder::stack_size).
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Smallest usable stack size accepted; smaller requests are rounded up.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Why a stack could not be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StackError {
    /// `mmap` refused to reserve address space for a new chunk of stacks.
    Map {
        /// The `errno` value `mmap` returned.
        errno: i32,
        /// How many bytes the chunk asked for.
        bytes: usize,
    },
    /// Guard pages had to be installed with `mprotect`, which splits the
    /// mapping, and the process reached `vm.max_map_count`.
    MapCountLimit {
        /// How many stacks this thread had mapped when the limit was hit.
        live_stacks: usize,
    },
    /// The requested stack size overflows the address space.
    SizeOverflow(usize),
    /// The thread is exiting and its stack pool has been torn down.
    ThreadExiting,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::Map { errno, bytes } => write!(
                f,
                "cannot map {bytes} bytes for coroutine stacks: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            StackError::MapCountLimit { live_stacks } => write!(
                f,
                "cannot install a stack guard page: the process reached vm.max_map_count \
                 with {live_stacks} stacks mapped (this kernel lacks MADV_GUARD_INSTALL, \
                 so each guard page splits the mapping); raise vm.max_map_count or use \
                 Linux 6.13 or later"
            ),
            StackError::SizeOverflow(size) => {
                write!(f, "a coroutine stack of {size} bytes overflows the address space")
            }
            StackError::ThreadExiting => {
                write!(f, "cannot allocate a coroutine stack: the thread is exiting")
            }
        }
    }
}

impl std::error::Error for StackError {}

/// How guard pages are installed on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)`: guards live inside one mapping.
    GuardInstall,
    /// `mprotect(PROT_NONE)`: each guard splits the mapping.
    Mprotect,
}

/// The usable size of a stack asked for with `requested` bytes: rounded up
/// to whole pages and to at least [`MIN_STACK_SIZE`].
#[inline]
pub fn usable_size(requested: usize) -> usize {
    pool::round_size(requested).unwrap_or(requested)
}

/// The system page size.
pub fn page_size() -> usize {
    pool::page_size()
}

/// Asks the CPU to start loading `[start, start + len)` into cache. A hint
/// only: it never faults, whatever the address, and does nothing on
/// architectures without a prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch(start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut line = start & !63;
        while line < start + len {
            // SAFETY: `prefetch` is a hint that never faults or changes
            // memory, for any address; SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}
