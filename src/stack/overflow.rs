//! Reporting coroutine stack overflows.
//!
//! Every chunk of stacks is recorded in a fixed, lock-free table. A `SIGSEGV`
//! handler, running on the thread's alternate signal stack, looks the fault
//! address up: inside a guard page it prints which stack size was exceeded
//! and aborts; anywhere else it hands the signal to the handler installed
//! before it (normally the standard library's, which reports main-thread
//! overflows), or to the default action.
//!
//! Everything the handler touches is async-signal-safe: atomics, a stack
//! buffer, `write(2)` and `abort(3)`.

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const SLOTS: usize = 4096;
const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;

struct Entry {
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    stride: AtomicUsize,
    guard: AtomicUsize,
    size: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    state: AtomicU8::new(FREE),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    stride: AtomicUsize::new(0),
    guard: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
};

static TABLE: [Entry; SLOTS] = [EMPTY; SLOTS];
/// One past the highest slot ever claimed; the handler scans `0..HIGH`.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// The `SIGSEGV` action that was in place before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

thread_local! {
    static ALTSTACK_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records a chunk of stacks; returns its slot, or `None` if the table is
/// full (overflows in that chunk then fall through to the previous handler).
pub(super) fn register(
    start: usize,
    len: usize,
    stride: usize,
    guard: usize,
    size: usize,
) -> Option<usize> {
    install_handler();
    ensure_altstack();
    for (i, entry) in TABLE.iter().enumerate() {
        if entry.state.compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            entry.start.store(start, Ordering::Relaxed);
            entry.len.store(len, Ordering::Relaxed);
            entry.stride.store(stride, Ordering::Relaxed);
            entry.guard.store(guard, Ordering::Relaxed);
            entry.size.store(size, Ordering::Relaxed);
            entry.state.store(READY, Ordering::Release);
            HIGH.fetch_max(i + 1, Ordering::AcqRel);
            return Some(i);
        }
    }
    None
}

/// Forgets a chunk before it is unmapped.
pub(super) fn unregister(slot: usize) {
    TABLE[slot].state.store(FREE, Ordering::Release);
}

/// If `addr` lies in a guard page of a registered chunk, the usable size of
/// the stack whose guard it is.
fn guard_hit(addr: usize) -> Option<usize> {
    let high = HIGH.load(Ordering::Acquire);
    TABLE[..high].iter().find_map(|entry| {
        if entry.state.load(Ordering::Acquire) != READY {
            return None;
        }
        let start = entry.start.load(Ordering::Relaxed);
        let len = entry.len.load(Ordering::Relaxed);
        if addr < start || addr - start >= len {
            return None;
        }
        let offset = (addr - start) % entry.stride.load(Ordering::Relaxed);
        (offset < entry.guard.load(Ordering::Relaxed)).then(|| entry.size.load(Ordering::Relaxed))
    })
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

/// The handler runs on the alternate signal stack, since the faulting stack
/// has none left. Threads started by `std` have one; give any other thread
/// that uses coroutine stacks one too.
fn ensure_altstack() {
    if ALTSTACK_CHECKED.with(|c| c.replace(true)) {
        return;
    }
    // SAFETY: all-zero is a valid `stack_t`; the call only writes to it.
    let mut current: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: a null new stack only queries the current one.
    unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let size = 64 * 1024;
    // SAFETY: a fresh anonymous mapping; it is leaked on purpose, as the
    // thread may take a signal until it ends.
    let sp = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if sp == libc::MAP_FAILED {
        return;
    }
    let stack = libc::stack_t { ss_sp: sp, ss_flags: 0, ss_size: size };
    // SAFETY: `stack` describes the mapping just made.
    unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
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
