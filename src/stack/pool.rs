//! The per-thread stack pool and the chunk mappings behind it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::Mutex;
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
/// Memory mappings the pools of this process have added: one per chunk, two
/// more per guard page installed with `mprotect` (each splits the chunk's
/// mapping).
static MAPPINGS_USED: AtomicUsize = AtomicUsize::new(0);
/// The most `MAPPINGS_USED` may reach; see [`cap_mappings_for_tests`].
static MAPPINGS_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

#[inline]
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
        Self::allocate_rounded(round_size(size)?)
    }

    /// [`allocate`](Self::allocate) for a size already rounded by
    /// [`round_size`].
    #[inline]
    pub(crate) fn allocate_rounded(size: usize) -> Result<Stack, StackError> {
        debug_assert_eq!(round_size(size), Ok(size));
        if let Some((base, hot_size)) = hot_stack(HOT.get()) {
            if hot_size == size {
                HOT.set((0, 0));
                return Ok(Stack { base, size, _not_send: std::marker::PhantomData });
            }
        }
        Self::allocate_from_pool(size)
    }

    /// [`allocate_rounded`](Self::allocate_rounded) when the hot stack
    /// does not serve.
    #[inline(never)]
    fn allocate_from_pool(size: usize) -> Result<Stack, StackError> {
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
    #[inline]
    fn drop(&mut self) {
        // The stack freed last waits in `HOT` (its cache lines are the
        // warmest); the one it replaces goes back to its pool.
        let hot = HOT.get();
        if hot.0 == HOT_CLOSED {
            release(self.base, self.size);
            return;
        }
        HOT.set((self.base.get(), self.size));
        if let Some((older, older_size)) = hot_stack(hot) {
            release(older, older_size);
        }
    }
}

/// Gives a stack that is no longer used back to this thread's pool, or to
/// its orphaned chunk if the pool is gone.
#[inline(never)]
fn release(base: NonZeroUsize, size: usize) {
    let returned = POOLS.try_with(|pools| {
        // The pool is never borrowed while a stack is dropped; if it
        // somehow were, the stack would stay lent out for good, so its
        // chunk stays mapped and nothing dangles.
        if let Ok(mut pools) = pools.try_borrow_mut() {
            pools.pool(size).push(base);
        }
    });
    if returned.is_err() {
        // The thread's pool is gone (a generator in a thread-local that
        // is destroyed after the pool's): the chunk was orphaned.
        return_orphaned(base);
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

#[inline]
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
    /// Stacks free for reuse: those in the free list, and the stack freed
    /// last (kept out of the list until the next allocation).
    pub stacks_free: usize,
    /// Chunk mappings made.
    pub chunks: usize,
    /// How guard pages are installed.
    pub guard_mode: GuardMode,
}

/// Statistics of this thread's pools, one entry per stack size in use.
pub fn pool_stats() -> Vec<PoolStats> {
    let hot_size = hot_stack(HOT.get()).map(|(_, size)| size);
    POOLS
        .try_with(|pools| {
            let pools = pools.borrow();
            pools
                .pools
                .iter()
                .map(|pool| {
                    let mut s = pool.stats();
                    // The hot stack is free, though out of the free list.
                    if hot_size == Some(s.stack_size) {
                        s.stacks_in_use -= 1;
                        s.stacks_free += 1;
                    }
                    s
                })
                .collect()
        })
        .unwrap_or_default()
}

thread_local! {
    static POOLS: RefCell<Pools> = const { RefCell::new(Pools { pools: Vec::new() }) };
    /// The stack freed last on this thread, `(base, size)`, kept out of its
    /// pool: taking it back needs no pool access, and a burst of short
    /// coroutines runs on one hot stack. `(0, 0)`: none; base
    /// [`HOT_CLOSED`]: the pools are gone (the thread is exiting), so
    /// stacks go where `Stack::drop` sends them without a pool. It counts
    /// as lent out in its pool's `in_use` (as free in [`pool_stats`]). No
    /// destructor, so it stays readable while other thread-locals are
    /// destroyed.
    static HOT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// `HOT`'s base once the pools are gone: never a stack's base (those are
/// page-aligned).
const HOT_CLOSED: usize = 1;

/// The stack a value of `HOT` holds, if it holds one (it is neither empty
/// nor closed): its base and size.
#[inline]
fn hot_stack((base, size): (usize, usize)) -> Option<(NonZeroUsize, usize)> {
    NonZeroUsize::new(base).filter(|b| b.get() != HOT_CLOSED).map(|b| (b, size))
}

struct Pools {
    pools: Vec<Pool>,
}

impl Drop for Pools {
    fn drop(&mut self) {
        // Back to its pool before the pools go, so its chunk is unmapped
        // (or orphaned) with the others; and no later stack is kept.
        if let Some((base, size)) = hot_stack(HOT.replace((HOT_CLOSED, 0))) {
            self.pool(size).push(base);
        }
    }
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

/// One mapping of `slots` stack slots, the first `carved` of them in use or
/// on the free list.
struct Chunk {
    start: usize,
    len: usize,
    slots: usize,
    carved: usize,
    /// Mappings this chunk accounts for in `MAPPINGS_USED`.
    mappings: usize,
    registration: overflow::Registration,
}

impl Chunk {
    /// Unregisters and unmaps the chunk.
    ///
    /// # Safety
    ///
    /// No stack of the chunk may be in use, and none may be handed out
    /// again: nothing may point into it.
    unsafe fn unmap(self) {
        // Unregister first, so the overflow handler never matches an
        // address that a later mapping reuses.
        self.registration.unregister();
        // SAFETY: the chunk was mapped by `map_chunk` with this length, and
        // the caller guarantees nothing uses it.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
        MAPPINGS_USED.fetch_sub(self.mappings, Ordering::Relaxed);
    }
}

/// Chunks whose pool is gone while some of their stacks are still lent
/// out, by start address, with how many are. Each is unmapped when its last
/// stack comes back. A stack that never comes back (`mem::forget`, or a
/// generator that had to abandon its stack) keeps its chunk mapped and
/// registered for good, so an overflow on it is still reported; the chunk's
/// free stacks were already released to the kernel.
static ORPHANS: Mutex<BTreeMap<usize, Orphan>> = Mutex::new(BTreeMap::new());

struct Orphan {
    chunk: Chunk,
    lent: usize,
}

/// Takes back a stack whose thread's pool has been destroyed.
#[cold]
fn return_orphaned(base: NonZeroUsize) {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // The stack lies below its base, in the chunk starting at or below it.
    let Some((&start, orphan)) = orphans.range_mut(..base.get()).next_back() else {
        return;
    };
    if base.get() > orphan.chunk.start + orphan.chunk.len {
        // Not from an orphaned chunk: cannot happen; keep it mapped.
        return;
    }
    orphan.lent -= 1;
    if orphan.lent == 0 {
        let orphan = orphans.remove(&start).expect("just found");
        // SAFETY: the pool is gone, so its free stacks are never handed out
        // again, and this was the chunk's last stack lent out: it is being
        // dropped, so nothing runs on it any more.
        unsafe { orphan.chunk.unmap() };
    }
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
        let mappings = install_guard(slot_start, self.guard).map_err(|errno| {
            if errno == libc::ENOMEM {
                StackError::MapCountLimit { live_stacks: self.mapped }
            } else {
                StackError::Map { errno, bytes: self.guard }
            }
        })?;
        chunk.mappings += mappings;
        chunk.carved += 1;
        self.mapped += 1;
        Ok(NonZeroUsize::new(slot_start + self.stride).expect("mapped addresses are not zero"))
    }

    fn map_chunk(&self, slots: usize) -> Result<Chunk, StackError> {
        let len = slots.checked_mul(self.stride).ok_or(StackError::SizeOverflow(self.size))?;
        let start = map_anonymous(len).map_err(|errno| {
            if errno == libc::ENOMEM && self.mapped > 0 {
                StackError::MapCountLimit { live_stacks: self.mapped }
            } else {
                StackError::Map { errno, bytes: len }
            }
        })?;
        let registration = overflow::register(start, len, self.stride, self.guard, self.size);
        Ok(Chunk { start, len, slots, carved: 0, mappings: 1, registration })
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
        if self.in_use == 0 {
            for chunk in self.chunks.drain(..) {
                // SAFETY: no stack is lent out (`in_use == 0`) and the pool
                // is going away, so no stack of any chunk is used again.
                unsafe { chunk.unmap() };
            }
            return;
        }
        // Some stacks are still lent out, e.g. to a generator in a
        // thread-local destroyed after this one: count them per chunk.
        let mut by_start: Vec<usize> = (0..self.chunks.len()).collect();
        by_start.sort_unstable_by_key(|&i| self.chunks[i].start);
        let mut free_by_chunk: Vec<Vec<NonZeroUsize>> = vec![Vec::new(); self.chunks.len()];
        for &base in &self.free {
            let below = by_start.partition_point(|&i| self.chunks[i].start < base.get());
            let chunk = by_start[below.checked_sub(1).expect("a free stack lies in a chunk")];
            free_by_chunk[chunk].push(base);
        }
        let mut orphans = ORPHANS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (chunk, free) in self.chunks.drain(..).zip(free_by_chunk) {
            let lent = chunk.carved - free.len();
            if lent == 0 {
                // SAFETY: none of this chunk's stacks is lent out, and the
                // pool is going away, so none is handed out again.
                unsafe { chunk.unmap() };
                continue;
            }
            // Kept mapped until its last stack comes back. Give the memory
            // of its free stacks back now, in case that never happens.
            for base in free {
                let low = base.get() - self.size;
                // SAFETY: a free stack holds no live data, and the pool that
                // could hand it out again is going away.
                unsafe { libc::madvise(low as *mut libc::c_void, self.size, libc::MADV_DONTNEED) };
            }
            orphans.insert(chunk.start, Orphan { chunk, lent });
        }
    }
}

fn guard_mode() -> GuardMode {
    match GUARD_MODE.load(Ordering::Relaxed) {
        2 => GuardMode::Mprotect,
        _ => GuardMode::GuardInstall,
    }
}

/// Maps `len` bytes for a chunk of stacks, counting one mapping; returns
/// the start, or the `errno` on failure.
fn map_anonymous(len: usize) -> Result<usize, i32> {
    take_mappings(1)?;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // touches no existing memory.
    let start = unsafe {
        libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
    };
    if start == libc::MAP_FAILED {
        let errno = last_errno();
        MAPPINGS_USED.fetch_sub(1, Ordering::Relaxed);
        return Err(errno);
    }
    // Huge pages would make every touched stack page cost 2 MiB. Failure
    // only costs memory, so the result is ignored.
    // SAFETY: [start, start + len) is the mapping just created.
    unsafe { libc::madvise(start, len, libc::MADV_NOHUGEPAGE) };
    Ok(start as usize)
}

/// Makes `[start, start + len)` a guard region. Returns how many memory
/// mappings that added, or the `errno` on failure.
fn install_guard(start: usize, len: usize) -> Result<usize, i32> {
    let addr = start as *mut libc::c_void;
    if GUARD_MODE.load(Ordering::Relaxed) != 2 {
        // SAFETY: the range lies inside a chunk this pool mapped and holds no
        // live data: it is a fresh slot's guard region.
        if unsafe { libc::madvise(addr, len, MADV_GUARD_INSTALL) } == 0 {
            GUARD_MODE.store(1, Ordering::Relaxed);
            return Ok(0);
        }
        let errno = last_errno();
        if errno != libc::EINVAL {
            return Err(errno);
        }
        // The kernel predates MADV_GUARD_INSTALL: fall back for good.
        GUARD_MODE.store(2, Ordering::Relaxed);
    }
    // The guard splits its mapping in up to three.
    take_mappings(2)?;
    // SAFETY: as above; the region becomes inaccessible, which is the point.
    if unsafe { libc::mprotect(addr, len, libc::PROT_NONE) } == 0 {
        Ok(2)
    } else {
        let errno = last_errno();
        MAPPINGS_USED.fetch_sub(2, Ordering::Relaxed);
        Err(errno)
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Counts `n` more mappings, or fails with `ENOMEM` (what the kernel says at
/// `vm.max_map_count`) if that would pass the cap set for tests.
fn take_mappings(n: usize) -> Result<(), i32> {
    let cap = MAPPINGS_CAP.load(Ordering::Relaxed);
    MAPPINGS_USED
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            used.checked_add(n).filter(|&after| after <= cap)
        })
        .map(drop)
        .map_err(|_| libc::ENOMEM)
}

/// Lets the stack pools of this process add at most `more` memory mappings
/// from now on (a chunk of stacks is one; a guard page installed with
/// `mprotect` two more), or lifts the cap with `None`. Past the cap,
/// allocation fails exactly as it does when the kernel refuses a mapping at
/// `vm.max_map_count`: [`StackError::MapCountLimit`]. For tests of that
/// path on machines whose real limit is too high to reach cheaply.
#[doc(hidden)]
pub fn cap_mappings_for_tests(more: Option<usize>) {
    let cap =
        more.map_or(usize::MAX, |more| MAPPINGS_USED.load(Ordering::Relaxed).saturating_add(more));
    MAPPINGS_CAP.store(cap, Ordering::Relaxed);
}

/// Forces the `mprotect` fallback, as on kernels before 6.13. For tests of
/// the fallback path; affects the whole process from then on.
#[doc(hidden)]
pub fn force_mprotect_guards() {
    GUARD_MODE.store(2, Ordering::Relaxed);
}

/// A stack taken from this thread's pool with nothing run on it, so tests
/// can lay out many stacks without touching their memory. Returned to the
/// pool when dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct RawStack(Stack);

impl RawStack {
    /// Takes a stack of at least `size` usable bytes from this thread's pool.
    pub fn allocate(size: usize) -> Result<RawStack, StackError> {
        Stack::allocate(size).map(RawStack)
    }

    /// Highest address of the stack (exclusive).
    pub fn base(&self) -> usize {
        self.0.base().get()
    }

    /// Lowest usable address.
    pub fn limit(&self) -> usize {
        self.0.base().get() - self.0.size()
    }

    /// Lowest address of the guard region below the stack.
    pub fn guard(&self) -> usize {
        self.0.limit_with_guard().get()
    }
}
