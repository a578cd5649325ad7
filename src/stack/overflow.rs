//! Reporting coroutine stack overflows.
//!
//! Every mapped chunk of stacks is recorded in a lock-free table. A
//! `SIGSEGV` handler, running on the thread's alternate signal stack, looks
//! the fault address up: inside a guard page it prints which stack size was
//! exceeded and aborts; anywhere else it hands the signal to the handler
//! installed before it (normally the standard library's, which reports
//! main-thread overflows), or to the default action.
//!
//! The table never fills up: it is a list of fixed segments, and when every
//! entry is taken a new segment is linked on. Segments are never freed, so
//! the handler can walk them at any time; the table is as large as the most
//! chunks ever mapped at once, and unmapped chunks free their entries for
//! reuse. Each entry is a small seqlock, so the handler never acts on an
//! entry that another thread is rewriting.
//!
//! Everything the handler touches is async-signal-safe: atomics, a stack
//! buffer, `write(2)` and `abort(3)`.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, fence};

/// Entries per segment of the table.
const SEGMENT_ENTRIES: usize = 256;

/// One chunk of stacks: `[start, start + len)`, slots of `stride` bytes
/// whose lowest `guard` bytes are the guard, `size` usable bytes each.
struct Entry {
    /// Taken by a registration (claimed with a compare-exchange).
    taken: AtomicBool,
    /// Even while the fields below are stable, odd while they are written;
    /// bumped again when the entry is released.
    seq: AtomicUsize,
    /// Zero unless the entry describes a mapped chunk.
    start: AtomicUsize,
    len: AtomicUsize,
    stride: AtomicUsize,
    guard: AtomicUsize,
    size: AtomicUsize,
}

/// A fixed run of entries and the link to the next run. All-zero is a valid,
/// empty segment.
struct Segment {
    entries: [Entry; SEGMENT_ENTRIES],
    next: AtomicPtr<Segment>,
}

/// The first segment; further ones are allocated as needed and never freed.
static FIRST: Segment = Segment {
    entries: [const {
        Entry {
            taken: AtomicBool::new(false),
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            stride: AtomicUsize::new(0),
            guard: AtomicUsize::new(0),
            size: AtomicUsize::new(0),
        }
    }; SEGMENT_ENTRIES],
    next: AtomicPtr::new(ptr::null_mut()),
};
/// The `SIGSEGV` action that was in place before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

thread_local! {
    /// Whether this thread's alternate signal stack was checked, and the one
    /// gencoro mapped for it, if any (unmapped when the thread exits).
    static ALTSTACK: AltStack = const { AltStack { checked: Cell::new(false), mapped: Cell::new(0) } };
}

/// A registered chunk: its entry in the table. Dropping it does not
/// unregister (the entry stays taken); call [`Registration::unregister`]
/// before unmapping the chunk.
pub(super) struct Registration(&'static Entry);

impl Registration {
    /// Forgets the chunk; call it before the chunk is unmapped.
    pub(super) fn unregister(self) {
        let entry = self.0;
        let seq = entry.seq.load(Ordering::Relaxed);
        entry.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        entry.start.store(0, Ordering::Relaxed);
        entry.len.store(0, Ordering::Relaxed);
        entry.seq.store(seq.wrapping_add(2), Ordering::Release);
        entry.taken.store(false, Ordering::Release);
    }
}

impl Entry {
    /// Claims the entry if it is free and fills it in.
    fn claim(&'static self, chunk: [usize; 5]) -> Option<Registration> {
        self.taken.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok()?;
        let [start, len, stride, guard, size] = chunk;
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.len.store(len, Ordering::Relaxed);
        self.stride.store(stride, Ordering::Relaxed);
        self.guard.store(guard, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
        self.start.store(start, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
        Some(Registration(self))
    }

    /// If this entry describes a chunk and `addr` lies in one of its guard
    /// regions, the usable size of the stack whose guard it is.
    fn guard_hit(&self, addr: usize) -> Option<usize> {
        // An entry being written describes a chunk being registered or
        // unregistered, which has no stack in use, so it is never the
        // faulting stack's: giving up on it after a few retries loses
        // nothing.
        for _ in 0..64 {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let start = self.start.load(Ordering::Relaxed);
            let len = self.len.load(Ordering::Relaxed);
            let stride = self.stride.load(Ordering::Relaxed);
            let guard = self.guard.load(Ordering::Relaxed);
            let size = self.size.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            if start == 0 || stride == 0 || addr < start || addr - start >= len {
                return None;
            }
            return ((addr - start) % stride < guard).then_some(size);
        }
        None
    }
}

/// Records a chunk of stacks. Never fails: the table grows when full.
pub(super) fn register(
    start: usize,
    len: usize,
    stride: usize,
    guard: usize,
    size: usize,
) -> Registration {
    install_handler();
    ensure_altstack();
    let chunk = [start, len, stride, guard, size];
    let mut segment: &'static Segment = &FIRST;
    loop {
        if let Some(registration) = segment.entries.iter().find_map(|entry| entry.claim(chunk)) {
            return registration;
        }
        let mut next = segment.next.load(Ordering::Acquire);
        if next.is_null() {
            let fresh = new_segment();
            match segment.next.compare_exchange(
                ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => next = fresh,
                Err(linked) => {
                    // Another thread linked a segment first: use theirs.
                    // SAFETY: `fresh` came from `new_segment` and was never
                    // published.
                    unsafe { alloc::dealloc(fresh.cast(), Layout::new::<Segment>()) };
                    next = linked;
                }
            }
        }
        // SAFETY: linked segments are never freed, and were fully
        // initialised (zeroed) before being published with release order.
        segment = unsafe { &*next };
    }
}

/// A zeroed segment on the heap. Zeroed in place, so no large temporary
/// goes on the (possibly small coroutine) stack.
fn new_segment() -> *mut Segment {
    let layout = Layout::new::<Segment>();
    // SAFETY: the layout has a non-zero size.
    let fresh = unsafe { alloc::alloc_zeroed(layout) }.cast::<Segment>();
    if fresh.is_null() {
        alloc::handle_alloc_error(layout);
    }
    // All-zero is a valid `Segment`: atomics at zero, a null `next`.
    fresh
}

/// If `addr` lies in a guard page of a registered chunk, the usable size of
/// the stack whose guard it is.
fn guard_hit(addr: usize) -> Option<usize> {
    let mut segment: &Segment = &FIRST;
    loop {
        if let Some(size) = segment.entries.iter().find_map(|entry| entry.guard_hit(addr)) {
            return Some(size);
        }
        let next = segment.next.load(Ordering::Acquire);
        if next.is_null() {
            return None;
        }
        // SAFETY: as in `register`: linked segments live forever.
        segment = unsafe { &*next };
    }
}

fn install_handler() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask).
        let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        action.sa_sigaction = on_sigsegv as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: as above.
        let mut previous: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: both pointers are valid for the call; `on_sigsegv` has the
        // signature SA_SIGINFO requires.
        unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, &mut previous);
        }
        previous
    });
}

/// Size of the alternate signal stack gencoro gives a thread that has none.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// This thread's alternate signal stack, as far as gencoro is concerned.
struct AltStack {
    checked: Cell<bool>,
    /// The stack gencoro mapped and installed, if it had to (0 if not).
    mapped: Cell<usize>,
}

impl Drop for AltStack {
    /// Threads that come and go must not leak a mapping each: uninstall and
    /// unmap the stack gencoro gave this thread. Overflows in coroutines
    /// resumed by thread-local destructors that run after this one are then
    /// not reported (the same holds for `std`'s own alternate stack, which
    /// is removed before any thread-local is destroyed).
    fn drop(&mut self) {
        let mapped = self.mapped.replace(0);
        if mapped == 0 {
            return;
        }
        // SAFETY: all-zero is a valid `stack_t`; the call only writes to it.
        let mut current: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: a null new stack only queries the current one.
        unsafe { libc::sigaltstack(ptr::null(), &mut current) };
        if current.ss_flags & libc::SS_ONSTACK != 0 {
            // Running on it (a destructor called from a signal handler?):
            // leave it be.
            return;
        }
        if current.ss_sp as usize == mapped && current.ss_flags & libc::SS_DISABLE == 0 {
            let disable =
                libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: disabling the alternate stack has no preconditions.
            if unsafe { libc::sigaltstack(&disable, ptr::null_mut()) } != 0 {
                return;
            }
        }
        // SAFETY: `mapped` is the mapping `ensure_altstack` made, of this
        // size; it is no longer installed and nothing runs on it.
        unsafe { libc::munmap(mapped as *mut libc::c_void, ALTSTACK_SIZE) };
    }
}

/// The handler runs on the alternate signal stack, since the faulting stack
/// has none left. Threads started by `std` have one; give any other thread
/// that uses coroutine stacks one too, for as long as the thread lives.
fn ensure_altstack() {
    let _ = ALTSTACK.try_with(|altstack| {
        if altstack.checked.replace(true) {
            return;
        }
        // SAFETY: all-zero is a valid `stack_t`; the call only writes to it.
        let mut current: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: a null new stack only queries the current one.
        unsafe { libc::sigaltstack(ptr::null(), &mut current) };
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        // SAFETY: a fresh anonymous mapping, touching no existing memory.
        let sp = unsafe {
            libc::mmap(
                ptr::null_mut(),
                ALTSTACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if sp == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t { ss_sp: sp, ss_flags: 0, ss_size: ALTSTACK_SIZE };
        // SAFETY: `stack` describes the mapping just made.
        if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } == 0 {
            altstack.mapped.set(sp as usize);
        } else {
            // SAFETY: the mapping just made, never installed.
            unsafe { libc::munmap(sp, ALTSTACK_SIZE) };
        }
    });
}

extern "C" fn on_sigsegv(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(size) = guard_hit(addr) {
        report(size, addr);
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    chain(signum, info, context);
}

/// Passes a fault that is not ours to whoever handled `SIGSEGV` before.
fn chain(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else { return };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the kernel applies it.
        // SAFETY: all-zero is SIG_DFL with an empty mask.
        let default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: valid pointer; sigaction is async-signal-safe.
        unsafe { libc::sigaction(signum, &default, std::ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the stored handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signum, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the stored handler takes the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signum);
    }
}

/// Writes the overflow message with no allocation.
fn report(size: usize, addr: usize) {
    let mut buf = [0u8; 320];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"gencoro: coroutine stack overflow: a coroutine used up its ");
    put(decimal(size, &mut [0; 20]));
    put(b"-byte stack and hit the guard page at 0x");
    put(hex(addr, &mut [0; 16]));
    put(b"; give it a larger stack with GeneratorBuilder::stack_size or runtime::Builder::stack_size\n");
    // SAFETY: `buf[..len]` is initialised; write(2) is async-signal-safe.
    unsafe { libc::write(2, buf.as_ptr().cast(), len) };
}

fn decimal(mut n: usize, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}

fn hex(mut n: usize, out: &mut [u8; 16]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return &out[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_numbers() {
        assert_eq!(super::decimal(131072, &mut [0; 20]), b"131072");
        assert_eq!(super::decimal(0, &mut [0; 20]), b"0");
        assert_eq!(super::hex(0x7f00ab, &mut [0; 16]), b"7f00ab");
    }
}
