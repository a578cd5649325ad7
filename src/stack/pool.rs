//! The per-thread stack pool and the chunk mappings behind it.

use std::cell::RefCell;
use std::fmt;
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::{GuardMode, MIN_STACK_SIZE, StackError, overflow};

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13+). The `libc` crate
/// does not export it yet; the value is the same on every architecture.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Guard pages below each stack.
const GUARD_PAGES: usize = 1;
/// Slots in the first chunk a pool maps; later chunks double, up to the cap.
const FIRST_CHUNK_SLOTS: usize = 8;
const MAX_CHUNK_SLOTS: usize = 4096;

/// 0 = not probed yet, 1 = MADV_GUARD_INSTALL works, 2 = mprotect fallback.
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// A usable stack region `[base - size, base)` with guard pages below it.
///
/// Owned: dropping it returns the region to the pool of the thread that
/// allocated it. It is `!Send` because pools are per thread.
pub(crate) struct Stack {
    base: NonZeroUsize,
    size: usize,
    _not_send: std::marker::PhantomData<*mut ()>,
}

impl Stack {
    /// Takes a stack of at least `size` usable bytes from this thread's pool.
    pub(crate) fn allocate(size: usize) -> Result<Stack, StackError> {
        let size = round_size(size)?;
        POOLS
            .try_with(|pools| pools.borrow_mut().pool(size).pop())
            .unwrap_or(Err(StackError::ThreadExiting))
    }

    /// Highest address of the stack (exclusive); stacks grow down from here.
    #[inline]
    pub(crate) fn base(&self) -> NonZeroUsize {
        self.base
    }

    /// Lowest address of the guard region below the stack.
    pub(crate) fn limit_with_guard(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.base.get() - self.size - GUARD_PAGES * page_size())
            .expect("a mapped stack does not start at address zero")
    }

    /// Usable bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let (base, size) = (self.base, self.size);
        // If the thread's pool is already gone (thread-local destruction),
        // the region is leaked: it stays mapped, so nothing dangles.
        let _ = POOLS.try_with(|pools| {
            if let Ok(mut pools) = pools.try_borrow_mut() {
                pools.pool(size).push(base);
            }
        });
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("base", &format_args!("{:#x}", self.base.get()))
            .field("size", &self.size)
            .finish()
    }
}

pub(crate) fn round_size(size: usize) -> Result<usize, StackError> {
    let page = page_size();
    let size = size.max(MIN_STACK_SIZE);
    size.checked_add(page - 1)
        .map(|s| s & !(page - 1))
        .filter(|s| s.checked_add(GUARD_PAGES * page).is_some())
        .ok_or(StackError::SizeOverflow(size))
}

/// What this thread's pool holds, for one stack size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Usable bytes per stack.
    pub stack_size: usize,
    /// Bytes of address space per stack, guard pages included.
    pub stride: usize,
    /// Stacks ever carved out of chunks (in use plus free).
    pub stacks_mapped: usize,
    /// Stacks currently lent out.
    pub stacks_in_use: usize,
    /// Stacks waiting in the free list.
    pub stacks_free: usize,
    /// Chunk mappings made.
    pub chunks: usize,
    /// How guard pages are installed.
    pub guard_mode: GuardMode,
}

/// Statistics of this thread's pools, one entry per stack size in use.
pub fn pool_stats() -> Vec<PoolStats> {
    POOLS
        .try_with(|pools| pools.borrow().pools.iter().map(Pool::stats).collect())
        .unwrap_or_default()
}

thread_local! {
    static POOLS: RefCell<Pools> = const { RefCell::new(Pools { pools: Vec::new() }) };
}

struct Pools {
    pools: Vec<Pool>,
}

impl Pools {
    #[inline]
    fn pool(&mut self, size: usize) -> &mut Pool {
        match self.pools.iter().position(|p| p.size == size) {
            Some(i) => &mut self.pools[i],
            None => {
                self.pools.push(Pool::new(size));
                self.pools.last_mut().expect("just pushed")
            }
        }
    }
}

struct Chunk {
    start: usize,
    len: usize,
    slots: usize,
    carved: usize,
    registration: Option<usize>,
}

struct Pool {
    size: usize,
    stride: usize,
    guard: usize,
    free: Vec<NonZeroUsize>,
    chunks: Vec<Chunk>,
    mapped: usize,
    in_use: usize,
}

impl Pool {
    fn new(size: usize) -> Pool {
        let guard = GUARD_PAGES * page_size();
        Pool {
            size,
            stride: size + guard,
            guard,
            free: Vec::new(),
            chunks: Vec::new(),
            mapped: 0,
            in_use: 0,
        }
    }

    #[inline]
    fn pop(&mut self) -> Result<Stack, StackError> {
        let base = match self.free.pop() {
            Some(base) => base,
            None => self.carve()?,
        };
        // Coroutines are often made in bursts: start loading the top of the
        // stack the next one will get, where its first frame is written.
        if let Some(next) = self.free.last() {
            super::prefetch(next.get() - 128, 128);
        }
        self.in_use += 1;
        Ok(Stack { base, size: self.size, _not_send: std::marker::PhantomData })
    }

    #[inline]
    fn push(&mut self, base: NonZeroUsize) {
        self.in_use -= 1;
        self.free.push(base);
    }

    /// Takes a never-used slot from the newest chunk, mapping a new chunk
    /// when it is full, and installs the slot's guard page.
    #[cold]
    fn carve(&mut self) -> Result<NonZeroUsize, StackError> {
        let needs_chunk = self.chunks.last().is_none_or(|c| c.carved == c.slots);
        if needs_chunk {
            let slots = self
                .chunks
                .last()
                .map_or(FIRST_CHUNK_SLOTS, |c| (c.slots * 2).min(MAX_CHUNK_SLOTS));
            let chunk = self.map_chunk(slots)?;
            self.chunks.push(chunk);
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just ensured");
        let slot_start = chunk.start + chunk.carved * self.stride;
        install_guard(slot_start, self.guard).map_err(|errno| {
            if errno == libc::ENOMEM {
                StackError::MapCountLimit { live_stacks: self.mapped }
            } else {
                StackError::Map { errno, bytes: self.guard }
            }
        })?;
        chunk.carved += 1;
        self.mapped += 1;
        Ok(NonZeroUsize::new(slot_start + self.stride).expect("mapped addresses are not zero"))
    }

    fn map_chunk(&self, slots: usize) -> Result<Chunk, StackError> {
        let len = slots.checked_mul(self.stride).ok_or(StackError::SizeOverflow(self.size))?;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: an anonymous private mapping at an address the kernel picks
        // touches no existing memory.
        let start = unsafe {
            libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
        };
        if start == libc::MAP_FAILED {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(if errno == libc::ENOMEM && self.mapped > 0 {
                StackError::MapCountLimit { live_stacks: self.mapped }
            } else {
                StackError::Map { errno, bytes: len }
            });
        }
        // Huge pages would make every touched stack page cost 2 MiB. Failure
        // only costs memory, so the result is ignored.
        // SAFETY: [start, start + len) is the mapping just created.
        unsafe { libc::madvise(start, len, libc::MADV_NOHUGEPAGE) };
        let start = start as usize;
        let registration = overflow::register(start, len, self.stride, self.guard, self.size);
        Ok(Chunk { start, len, slots, carved: 0, registration })
    }

    fn stats(&self) -> PoolStats {
        PoolStats {
            stack_size: self.size,
            stride: self.stride,
            stacks_mapped: self.mapped,
            stacks_in_use: self.in_use,
            stacks_free: self.free.len(),
            chunks: self.chunks.len(),
            guard_mode: guard_mode(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A stack still lent out may belong to a generator stored in another
        // thread-local that is destroyed later; its memory must stay mapped.
        if self.in_use != 0 {
            return;
        }
        for chunk in self.chunks.drain(..) {
            if let Some(slot) = chunk.registration {
                overflow::unregister(slot);
            }
            // SAFETY: the chunk was mapped by `map_chunk` with this length, and
            // no stack in it is in use (`in_use == 0`), so nothing points into it.
            unsafe { libc::munmap(chunk.start as *mut libc::c_void, chunk.len) };
        }
    }
}

fn guard_mode() -> GuardMode {
    match GUARD_MODE.load(Ordering::Relaxed) {
        2 => GuardMode::Mprotect,
        _ => GuardMode::GuardInstall,
    }
}

/// Makes `[start, start + len)` a guard region; returns the `errno` on failure.
fn install_guard(start: usize, len: usize) -> Result<(), i32> {
    let addr = start as *mut libc::c_void;
    if GUARD_MODE.load(Ordering::Relaxed) != 2 {
        // SAFETY: the range lies inside a chunk this pool mapped and holds no
        // live data: it is a fresh slot's guard region.
        if unsafe { libc::madvise(addr, len, MADV_GUARD_INSTALL) } == 0 {
            GUARD_MODE.store(1, Ordering::Relaxed);
            return Ok(());
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno != libc::EINVAL {
            return Err(errno);
        }
        // The kernel predates MADV_GUARD_INSTALL: fall back for good.
        GUARD_MODE.store(2, Ordering::Relaxed);
    }
    // SAFETY: as above; the region becomes inaccessible, which is the point.
    if unsafe { libc::mprotect(addr, len, libc::PROT_NONE) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Forces the `mprotect` fallback, as on kernels before 6.13. For tests of
/// the fallback path; affects the whole process from then on.
#[doc(hidden)]
pub fn force_mprotect_guards() {
    GUARD_MODE.store(2, Ordering::Relaxed);
}
