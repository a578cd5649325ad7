//! Task records: reference-counted boxes, like [`std::rc::Rc`], whose
//! memory comes from a per-thread cache of freed blocks.
//!
//! A loop makes and frees one record per task and per internal future. With
//! the system allocator that is a round trip through its slow path once its
//! small per-size cache is empty (a burst of a thousand tasks empties it at
//! once): about a quarter of what spawning and joining a task costs. Here a
//! freed record's block goes to a free list of its size class on its thread,
//! and the next record of that class takes it back, still in cache.
//!
//! - Blocks are sized in classes of [`CLASS`] bytes, up to [`MAX_POOLED`];
//!   larger or over-aligned records go straight to the system allocator.
//! - A thread keeps at most [`CACHE_BYTES`] of free blocks (16 MiB, about
//!   50,000 task records); beyond that a freed block goes back to the
//!   system allocator. A burst of 10,000 sleeping tasks fits: with a 2 MiB
//!   cap, the 40% of its records beyond it went through `malloc` and
//!   `free`, 120 more instructions a task on average. What a thread keeps
//!   is bounded by its peak of live records, and is under a tenth of what
//!   the stack pool keeps for the same peak (a started task's stack holds
//!   at least one 4 KiB page, its record about 330 bytes).
//! - Built with the `sanitize` feature, nothing is cached, so that
//!   AddressSanitizer sees every record freed and can catch a use after.
//! - The cache is a `const` thread-local with no destructor (the fast path
//!   touches nothing else); a separate guard, registered the first time a
//!   block is cached, frees the cached blocks when the thread exits, and
//!   from then on freed blocks go straight back to the system allocator.
//!
//! [`Record`] has the part of `Rc`'s interface the runtime uses. Coercing a
//! record to a trait object is [`unsize_record!`]
//! (custom smart pointers cannot coerce implicitly on stable Rust).
//!
//! This module, four blocks in `task.rs` (`suspend`, `TaskCell::own`,
//! `<dyn TaskObj>::header` and `current_task_obj`) and one in `schedule.rs`
//! (`wake_token`, with the `unsafe impl` of `Runnable` in `task.rs`) are the
//! runtime's only unsafe code (ARCHITECTURE.md says why each holds).

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// Size classes are multiples of this many bytes (`malloc`'s granule, so
/// a class wastes no more than the system allocator would).
const CLASS: usize = 16;
/// Records up to this size (header included) are pooled.
const MAX_POOLED: usize = 1024;
/// Number of size classes.
const CLASSES: usize = MAX_POOLED / CLASS;
/// The alignment of every pooled block (what `malloc` gives).
const POOLED_ALIGN: usize = 16;
/// At most this many bytes of free blocks are kept per thread.
const CACHE_BYTES: usize = 16 << 20;

/// A record's memory: the counts, the block it was allocated as, the value.
#[repr(C)]
pub(crate) struct RecordBox<T: ?Sized> {
    strong: Cell<u32>,
    /// Weak handles, plus one held by all strong ones together (as `Rc`).
    weak: Cell<u32>,
    /// The size of the block allocated; pooled blocks have
    /// [`POOLED_ALIGN`], others `align`.
    block: u32,
    align: u32,
    value: T,
}

/// A strong handle to a record. `!Send` and `!Sync`, like `Rc`.
pub(crate) struct Record<T: ?Sized> {
    ptr: NonNull<RecordBox<T>>,
    _owns: PhantomData<RecordBox<T>>,
}

/// A weak handle to a record: keeps its memory, not its value.
pub(crate) struct WeakRecord<T: ?Sized> {
    ptr: NonNull<RecordBox<T>>,
}

/// Counts past this abort, as `Rc`'s do at `usize::MAX`: a program would
/// need 4 billion handles (32 GiB of them) to get here.
#[cold]
#[inline(never)]
fn count_overflow() -> ! {
    std::process::abort()
}

#[inline(always)]
fn increment(c: &Cell<u32>) {
    let n = c.get();
    if n == u32::MAX {
        count_overflow();
    }
    c.set(n + 1);
}

impl<T> Record<T> {
    /// Moves `value` into a new record.
    #[cfg(test)]
    pub(crate) fn new(value: T) -> Record<T> {
        Record::new_with(|| value)
    }

    /// A new record of the value `make` returns, which it builds in place
    /// (a large record is not built on the stack and copied).
    #[inline(always)]
    pub(crate) fn new_with(make: impl FnOnce() -> T) -> Record<T> {
        // The header keeps the block's size and alignment in 32 bits.
        const { assert!(size_of::<RecordBox<T>>() <= u32::MAX as usize) };
        let layout = Layout::new::<RecordBox<T>>();
        let (mem, block, align) = cache::alloc(layout);
        let ptr = mem.cast::<RecordBox<T>>();
        let b = ptr.as_ptr();
        // SAFETY: `cache::alloc` returned a block of at least
        // `layout.size()` bytes aligned to at least `layout.align()`, owned
        // by nobody else: each field is written once, in bounds. Should
        // `make` panic, the block is lost, never read.
        unsafe {
            (&raw mut (*b).strong).write(Cell::new(1));
            (&raw mut (*b).weak).write(Cell::new(1));
            (&raw mut (*b).block).write(block as u32);
            (&raw mut (*b).align).write(align as u32);
            (&raw mut (*b).value).write(make());
        }
        Record { ptr, _owns: PhantomData }
    }
}

impl<T: ?Sized> Record<T> {
    #[inline(always)]
    fn inner(&self) -> &RecordBox<T> {
        // SAFETY: a strong handle keeps the box and its value alive.
        unsafe { self.ptr.as_ref() }
    }

    /// A weak handle to the same record.
    #[inline]
    pub(crate) fn downgrade(this: &Record<T>) -> WeakRecord<T> {
        increment(&this.inner().weak);
        WeakRecord { ptr: this.ptr }
    }

    /// Whether two handles are to the same record.
    #[inline]
    pub(crate) fn ptr_eq<U: ?Sized>(a: &Record<T>, b: &Record<U>) -> bool {
        ptr::addr_eq(a.ptr.as_ptr(), b.ptr.as_ptr())
    }

    /// A new handle to the same record, as a record of `U`.
    ///
    /// # Safety
    ///
    /// The record's value is a `U`: it was made as a `Record<U>`.
    #[inline]
    pub(crate) unsafe fn downcast_unchecked<U>(this: &Record<T>) -> Record<U> {
        increment(&this.inner().strong);
        Record { ptr: this.ptr.cast::<RecordBox<U>>(), _owns: PhantomData }
    }

    /// Whether `value` is at the address where the value of a record of
    /// `U` with this box would be (computed without reading the box).
    #[inline(always)]
    pub(crate) fn value_is_at<U>(this: &Record<T>, value: &U) -> bool {
        let offset = std::mem::offset_of!(RecordBox<U>, value);
        this.ptr.as_ptr().cast::<u8>() as usize == (value as *const U as usize).wrapping_sub(offset)
    }

    /// The address of the record's value.
    #[inline]
    pub(crate) fn as_ptr(this: &Record<T>) -> *const T {
        &raw const this.inner().value
    }

    /// The box, for [`unsize_record!`]: the handle's
    /// count moves to what the caller makes of it.
    #[inline(always)]
    pub(crate) fn into_box_ptr(this: Record<T>) -> NonNull<RecordBox<T>> {
        let ptr = this.ptr;
        std::mem::forget(this);
        ptr
    }

    /// The box, without touching the handle's count: an address to keep
    /// where a borrow of the handle cannot be (see
    /// [`clone_from_box_ptr`](Self::clone_from_box_ptr)).
    #[inline(always)]
    pub(crate) fn box_ptr(this: &Record<T>) -> NonNull<RecordBox<T>> {
        this.ptr
    }

    /// A new handle to the record whose box is at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`box_ptr`](Self::box_ptr) of a handle to a
    /// record of this type (through at most a cast to the value's own type
    /// and an unsizing coercion, which keep the address), and a handle to
    /// the record must still be alive.
    #[inline(always)]
    pub(crate) unsafe fn clone_from_box_ptr(ptr: NonNull<RecordBox<T>>) -> Record<T> {
        // SAFETY: a live handle keeps the box allocated and its value alive
        // (the caller's precondition).
        increment(unsafe { &(*ptr.as_ptr()).strong });
        Record { ptr, _owns: PhantomData }
    }

    /// Takes over the count of a handle made into a box pointer by
    /// [`into_box_ptr`](Self::into_box_ptr).
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_box_ptr`, through at most an unsizing
    /// coercion (which keeps the address), and be taken over once.
    #[inline(always)]
    pub(crate) unsafe fn from_box_ptr(ptr: NonNull<RecordBox<T>>) -> Record<T> {
        Record { ptr, _owns: PhantomData }
    }
}

/// Coerces a [`Record`] to a record of a trait object (or an upcast of
/// one), keeping its count: `unsize_record!(cell => dyn TaskObj)`.
macro_rules! unsize_record {
    ($record:expr => $target:ty) => {
        $crate::runtime::record::unsize_handle!(Record, $record, $target)
    };
}

/// [`unsize_record!`] for a [`WeakRecord`].
macro_rules! unsize_weak_record {
    ($weak:expr => $target:ty) => {
        $crate::runtime::record::unsize_handle!(WeakRecord, $weak, $target)
    };
}

/// Both coercions: the handle's box pointer goes through an unsizing
/// coercion, the count with it.
macro_rules! unsize_handle {
    ($kind:ident, $handle:expr, $target:ty) => {{
        let ptr = $crate::runtime::record::$kind::into_box_ptr($handle);
        let ptr: ::std::ptr::NonNull<$crate::runtime::record::RecordBox<$target>> = ptr;
        // SAFETY: the pointer came from `into_box_ptr` just above, through
        // an unsizing coercion only, and is taken over once.
        unsafe { $crate::runtime::record::$kind::<$target>::from_box_ptr(ptr) }
    }};
}

pub(crate) use {unsize_handle, unsize_record, unsize_weak_record};

impl<T: ?Sized> Clone for Record<T> {
    #[inline]
    fn clone(&self) -> Record<T> {
        increment(&self.inner().strong);
        Record { ptr: self.ptr, _owns: PhantomData }
    }
}

impl<T: ?Sized> Deref for Record<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T: ?Sized> Drop for Record<T> {
    #[inline]
    fn drop(&mut self) {
        let strong = &self.inner().strong;
        let n = strong.get() - 1;
        strong.set(n);
        if n == 0 {
            // SAFETY: this was the last strong handle: nobody can reach
            // the value any more (weak handles see a count of 0 and do not
            // upgrade), and it has not been dropped before.
            unsafe { drop_value(self.ptr) };
        }
    }
}

/// Drops the value of a record whose last strong handle went, then the
/// strong handles' weak count. Out of line: the common drop is a decrement.
///
/// # Safety
///
/// The strong count of `ptr`'s box has just reached zero.
#[inline(never)]
unsafe fn drop_value<T: ?Sized>(ptr: NonNull<RecordBox<T>>) {
    /// Drops the strong handles' share of the weak count when the value
    /// is dropped, also if its destructor panics (as `Rc` does).
    struct ReleaseWeak<T: ?Sized>(NonNull<RecordBox<T>>);
    impl<T: ?Sized> Drop for ReleaseWeak<T> {
        fn drop(&mut self) {
            // SAFETY: the strong handles' share of the weak count kept the
            // box until now, and is dropped this once.
            unsafe { release_weak(self.0) };
        }
    }
    let _release = ReleaseWeak(ptr);
    // SAFETY: the box is live (its weak count is at least 1), and its
    // value is dropped this once (the caller's precondition). A destructor
    // that runs here and reaches this record through a weak handle cannot
    // upgrade it.
    unsafe { ptr::drop_in_place(&raw mut (*ptr.as_ptr()).value) };
}

/// Drops one weak count of `ptr`'s box, freeing the block at zero.
///
/// # Safety
///
/// The box is live and the caller owns the count it drops.
#[inline]
unsafe fn release_weak<T: ?Sized>(ptr: NonNull<RecordBox<T>>) {
    // SAFETY: the box is live (the caller's precondition); only the counts
    // and the block's size are read, not the (perhaps dropped) value.
    let (weak, block, align) = unsafe {
        let b = ptr.as_ptr();
        (&(*b).weak, (*b).block as usize, (*b).align as usize)
    };
    let n = weak.get() - 1;
    weak.set(n);
    if n == 0 {
        // SAFETY: no handle is left; the block was allocated by
        // `cache::alloc` as `block` bytes with alignment `align`.
        unsafe { cache::free(ptr.cast::<u8>(), block, align) };
    }
}

impl<T: ?Sized> WeakRecord<T> {
    /// A strong handle, if the value is still alive.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Record<T>> {
        // SAFETY: a weak handle keeps the box (not the value) alive.
        let strong = unsafe { &self.ptr.as_ref().strong };
        if strong.get() == 0 {
            return None;
        }
        increment(strong);
        Some(Record { ptr: self.ptr, _owns: PhantomData })
    }

    /// The address of the record's value, which may have been dropped: for
    /// telling records apart and for prefetching, never to read through.
    /// The same address as [`Record::as_ptr`] of a strong handle.
    #[inline]
    pub(crate) fn as_ptr(this: &WeakRecord<T>) -> *const T {
        // SAFETY: a weak handle keeps the box allocated, so the projection
        // stays inside it; it reads nothing (the vtable of an unsized value,
        // for the field's alignment, is static).
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// Where the record's block starts (its counts, then its value): for
    /// prefetching.
    #[inline]
    pub(crate) fn block_addr(this: &WeakRecord<T>) -> usize {
        this.ptr.as_ptr().cast::<u8>() as usize
    }

    /// The box, for [`unsize_weak_record!`].
    #[inline(always)]
    pub(crate) fn into_box_ptr(this: WeakRecord<T>) -> NonNull<RecordBox<T>> {
        let ptr = this.ptr;
        std::mem::forget(this);
        ptr
    }

    /// Takes over the count of a weak handle made into a box pointer.
    ///
    /// # Safety
    ///
    /// As [`Record::from_box_ptr`], for a weak handle.
    #[inline(always)]
    pub(crate) unsafe fn from_box_ptr(ptr: NonNull<RecordBox<T>>) -> WeakRecord<T> {
        WeakRecord { ptr }
    }
}

impl<T: ?Sized> Clone for WeakRecord<T> {
    #[inline]
    fn clone(&self) -> WeakRecord<T> {
        // SAFETY: a weak handle keeps the box alive.
        increment(unsafe { &self.ptr.as_ref().weak });
        WeakRecord { ptr: self.ptr }
    }
}

impl<T: ?Sized> Drop for WeakRecord<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this handle's weak count keeps the box, and it is
        // dropped once, here.
        unsafe { release_weak(self.ptr) };
    }
}

impl<T: ?Sized> fmt::Debug for Record<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Record({:p})", self.ptr.as_ptr().cast::<u8>())
    }
}

impl<T: ?Sized> fmt::Debug for WeakRecord<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeakRecord({:p})", self.ptr.as_ptr().cast::<u8>())
    }
}

/// The per-thread cache of freed blocks.
mod cache {
    use super::*;

    /// A free block's first word: the next free block of its class.
    struct Free {
        next: *mut Free,
    }

    /// Not cached yet on this thread: the exit guard is not registered.
    const UNREGISTERED: u8 = 0;
    /// The exit guard is registered: blocks may be cached.
    const OPEN: u8 = 1;
    /// The thread is exiting and the guard has freed the cache: freed
    /// blocks go straight back to the system allocator.
    const CLOSED: u8 = 2;

    struct Cache {
        heads: [Cell<*mut Free>; CLASSES],
        /// Bytes of free blocks cached, all classes together.
        bytes: Cell<usize>,
        state: Cell<u8>,
    }

    thread_local! {
        static CACHE: Cache = const {
            Cache {
                heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
                bytes: Cell::new(0),
                state: Cell::new(UNREGISTERED),
            }
        };
        static EXIT_GUARD: ExitGuard = const { ExitGuard };
    }

    /// Frees the cached blocks when its thread exits.
    struct ExitGuard;

    impl Drop for ExitGuard {
        fn drop(&mut self) {
            // `CACHE` has no destructor: it is reachable for as long as
            // the thread runs.
            CACHE.with(|c| {
                c.state.set(CLOSED);
                c.bytes.set(0);
                for class in 0..CLASSES {
                    let mut p = c.heads[class].replace(ptr::null_mut());
                    while !p.is_null() {
                        // SAFETY: `p` is a cached block: allocated as a
                        // pooled block of this class, owned by the cache,
                        // its first word the next one.
                        let next = unsafe { (*p).next };
                        // SAFETY: as above; it leaves the cache here.
                        unsafe { alloc::dealloc(p.cast(), pooled_layout(class)) };
                        p = next;
                    }
                }
            });
        }
    }

    #[inline(always)]
    fn pooled_layout(class: usize) -> Layout {
        // SAFETY: the size is a non-zero multiple of the alignment, a
        // power of two, and far below `isize::MAX`.
        unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS, POOLED_ALIGN) }
    }

    /// A block for `layout`: `(memory, block size, alignment)`.
    #[inline(always)]
    pub(super) fn alloc(layout: Layout) -> (NonNull<u8>, usize, usize) {
        if layout.size() <= MAX_POOLED && layout.align() <= POOLED_ALIGN {
            let class = layout.size().div_ceil(CLASS).max(1) - 1;
            let cached = CACHE.with(|c| {
                let head = c.heads[class].get();
                if !head.is_null() {
                    // SAFETY: `head` is a cached block, its first word the
                    // next one; taking it out hands it to the caller.
                    c.heads[class].set(unsafe { (*head).next });
                    c.bytes.set(c.bytes.get() - (class + 1) * CLASS);
                }
                head
            });
            let block = pooled_layout(class);
            let mem = match NonNull::new(cached.cast::<u8>()) {
                Some(mem) => mem,
                None => system_alloc(block),
            };
            (mem, block.size(), POOLED_ALIGN)
        } else {
            (system_alloc(layout), layout.size(), layout.align())
        }
    }

    #[inline(never)]
    fn system_alloc(layout: Layout) -> NonNull<u8> {
        // SAFETY: every record layout has a non-zero size (the header).
        let mem = unsafe { alloc::alloc(layout) };
        NonNull::new(mem).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// Frees a block `alloc` returned as `block` bytes aligned to `align`.
    ///
    /// # Safety
    ///
    /// `mem` came from [`alloc`] with that size and alignment, and nothing
    /// uses it any more.
    #[inline]
    pub(super) unsafe fn free(mem: NonNull<u8>, block: usize, align: usize) {
        let poolable = align == POOLED_ALIGN && block <= MAX_POOLED && block % CLASS == 0;
        if poolable && !cfg!(feature = "sanitize") {
            let class = block / CLASS - 1;
            let cached = CACHE.with(|c| {
                let state = c.state.get();
                if state != OPEN && !register(c) {
                    return false;
                }
                let bytes = c.bytes.get() + block;
                if bytes > CACHE_BYTES {
                    return false;
                }
                let free = mem.as_ptr().cast::<Free>();
                // SAFETY: the block is the caller's to give up, at least
                // a word long and aligned for one; the cache owns it now.
                unsafe { free.write(Free { next: c.heads[class].get() }) };
                c.heads[class].set(free);
                c.bytes.set(bytes);
                true
            });
            if cached {
                return;
            }
        }
        // SAFETY: the caller's precondition: `mem` was allocated with this
        // layout (a pooled block's is `pooled_layout` of its class).
        unsafe { alloc::dealloc(mem.as_ptr(), Layout::from_size_align_unchecked(block, align)) };
    }

    /// Registers the exit guard the first time a block is cached on this
    /// thread; false once the thread is exiting.
    #[cold]
    #[inline(never)]
    fn register(c: &Cache) -> bool {
        if c.state.get() == CLOSED {
            return false;
        }
        // Registering the guard's destructor is what touching it does;
        // during thread exit, after the guard ran, it fails.
        if EXIT_GUARD.try_with(|_| ()).is_err() {
            c.state.set(CLOSED);
            return false;
        }
        c.state.set(OPEN);
        true
    }

    /// Bytes of free blocks cached on this thread (for tests).
    #[cfg(test)]
    pub(super) fn cached_bytes() -> usize {
        CACHE.with(|c| c.bytes.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    trait Named {
        fn name(&self) -> &str;
    }
    trait Tagged: Named {}
    struct Thing(String, Rc<Cell<u32>>);
    impl Named for Thing {
        fn name(&self) -> &str {
            &self.0
        }
    }
    impl Tagged for Thing {}
    impl Drop for Thing {
        fn drop(&mut self) {
            self.1.set(self.1.get() + 1);
        }
    }

    #[test]
    fn the_value_is_dropped_once_with_the_last_strong_handle_and_weak_handles_then_fail() {
        let drops = Rc::new(Cell::new(0));
        let a = Record::new(Thing("a".into(), drops.clone()));
        let b = a.clone();
        let w = Record::downgrade(&a);
        drop(a);
        assert_eq!(drops.get(), 0);
        assert_eq!(w.upgrade().map(|r| r.name().to_string()).as_deref(), Some("a"));
        drop(b);
        assert_eq!(drops.get(), 1);
        assert!(w.upgrade().is_none());
        drop(w);
        assert_eq!(drops.get(), 1);
    }

    /// A weak handle names its value's address and its block's, also as a
    /// trait object and after the value is gone (reading nothing).
    #[test]
    fn a_weak_handle_names_its_value_and_block_after_the_value_is_gone() {
        let drops = Rc::new(Cell::new(0));
        let r = Record::new(Thing("w".into(), drops.clone()));
        let value = Record::as_ptr(&r) as *const () as usize;
        let weak = unsize_weak_record!(Record::downgrade(&r) => dyn Named);
        assert_eq!(WeakRecord::as_ptr(&weak) as *const () as usize, value);
        let block = WeakRecord::block_addr(&weak);
        assert_eq!(value - block, std::mem::offset_of!(RecordBox<Thing>, value));
        drop(r);
        assert_eq!(drops.get(), 1);
        assert!(weak.upgrade().is_none());
        assert_eq!(WeakRecord::as_ptr(&weak) as *const () as usize, value);
        assert_eq!(WeakRecord::block_addr(&weak), block);
    }

    #[test]
    fn coerced_and_upcast_records_share_the_count() {
        let drops = Rc::new(Cell::new(0));
        let r = Record::new(Thing("t".into(), drops.clone()));
        let tagged = unsize_record!(r.clone() => dyn Tagged);
        let named = unsize_record!(tagged.clone() => dyn Named);
        let weak = unsize_weak_record!(Record::downgrade(&r) => dyn Named);
        assert!(Record::ptr_eq(&r, &named));
        assert_eq!(named.name(), "t");
        drop((r, tagged));
        assert_eq!(drops.get(), 0);
        assert_eq!(weak.upgrade().unwrap().name(), "t");
        drop(named);
        assert_eq!(drops.get(), 1);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_downcast_handle_is_a_new_strong_handle() {
        let drops = Rc::new(Cell::new(0));
        let r = Record::new(Thing("v".into(), drops.clone()));
        let named = unsize_record!(r.clone() => dyn Named);
        drop(r);
        // SAFETY: the record was made as a `Record<Thing>`.
        let again: Record<Thing> = unsafe { Record::downcast_unchecked(&named) };
        assert!(Record::ptr_eq(&named, &again));
        drop(named);
        assert_eq!(drops.get(), 0);
        assert_eq!(again.0, "v");
        drop(again);
        assert_eq!(drops.get(), 1);
    }

    /// A box address kept without a count, cast to the value's type and
    /// coerced to a trait object, makes a new strong handle while another
    /// is alive (as the current task's address does).
    #[test]
    fn a_handle_made_from_a_kept_box_address_is_a_new_strong_handle() {
        let drops = Rc::new(Cell::new(0));
        let r = Record::new(Thing("k".into(), drops.clone()));
        let tagged = unsize_record!(r.clone() => dyn Tagged);
        drop(r);
        let kept: NonNull<RecordBox<Thing>> = Record::box_ptr(&tagged).cast();
        let kept: NonNull<RecordBox<dyn Named>> = kept;
        // SAFETY: `kept` is the box of `tagged`, a live handle to a record
        // made as a `Record<Thing>`.
        let named = unsafe { Record::clone_from_box_ptr(kept) };
        assert!(Record::ptr_eq(&named, &tagged));
        assert_eq!(named.name(), "k");
        drop(tagged);
        assert_eq!(drops.get(), 0);
        assert_eq!(named.name(), "k");
        drop(named);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    #[cfg_attr(feature = "sanitize", ignore = "nothing is cached under the sanitizer")]
    fn a_freed_block_is_reused_by_the_next_record_of_its_class() {
        let a = Record::new([7u64; 20]);
        let addr = Record::as_ptr(&a) as usize;
        drop(a);
        let b = Record::new([9u8; 150]);
        assert_eq!(Record::as_ptr(&b) as usize, addr, "same class: the freed block");
        assert!(b.iter().all(|&x| x == 9));
    }

    #[test]
    #[cfg_attr(feature = "sanitize", ignore = "nothing is cached under the sanitizer")]
    fn a_thread_caches_a_bounded_number_of_bytes() {
        // Blocks of 216 and 516 bytes: together about 1.8 times the cap.
        let v: Vec<_> = (0..CACHE_BYTES / 400).map(|_| Record::new([0u8; 200])).collect();
        let w: Vec<_> = (0..CACHE_BYTES / 400).map(|_| Record::new([0u8; 500])).collect();
        drop((v, w));
        let cached = cache::cached_bytes();
        assert!(cached > CACHE_BYTES - 1024, "{cached} bytes cached");
        assert!(cached <= CACHE_BYTES, "{cached} bytes cached");
    }

    #[test]
    fn large_and_over_aligned_records_use_the_system_allocator() {
        #[repr(align(64))]
        struct Wide(u8);
        let big = Record::new([1u8; 4096]);
        let wide = Record::new(Wide(3));
        assert_eq!(Record::as_ptr(&wide) as usize % 64, 0);
        assert_eq!(wide.0, 3);
        assert_eq!(big[4095], 1);
    }

    #[test]
    fn blocks_freed_on_an_exiting_thread_after_its_cache_closed_are_not_lost() {
        struct LateDrop(Option<Record<[u8; 100]>>);
        impl Drop for LateDrop {
            fn drop(&mut self) {
                drop(self.0.take());
                // A record made and freed this late goes to the system
                // allocator either way.
                drop(Record::new([2u8; 100]));
            }
        }
        thread_local! {
            static LATE: std::cell::RefCell<LateDrop> = const { std::cell::RefCell::new(LateDrop(None)) };
        }
        std::thread::spawn(|| {
            drop(Record::new([1u8; 100]));
            LATE.with(|l| l.borrow_mut().0 = Some(Record::new([3u8; 100])));
        })
        .join()
        .unwrap();
    }
}
