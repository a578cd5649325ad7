//! A hostile review of the pooled task records (`src/runtime/record.rs`),
//! from the public API only: task records (`Task`, `TaskRef`, `Promise`)
//! and the internal futures of gather, wait, shield, wait_for, TaskGroup,
//! as_completed and the bridge are refcounted boxes allocated from a
//! per-thread cache of freed blocks.
//!
//! Every test counts the destructors of the values it hands to the loop
//! (task captures, task results, done-callback captures) through a
//! [`Ledger`], and checks each ran exactly once. The whole binary runs on
//! [`CheckingAlloc`], a global allocator that records each block's layout
//! in a header in front of it and aborts the process, with a message, on
//! a double free, a free of a pointer it did not hand out, or a free with
//! another layout than the block was allocated with; it fills freed
//! memory with a poison byte, so that a use after free of a block that
//! went back to the system reads garbage. It also counts each thread's
//! live blocks, for the one test that looks for a leaked record.
//!
//! Blocks a record cache keeps are never freed to the allocator, so
//! neither this allocator nor AddressSanitizer sees a use after free of
//! one: the drop counts and the results' contents are what catch those.
//!
//! Everything runs on the virtual clock.

use std::alloc::{GlobalAlloc, Layout, System};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gencoro::runtime::{
    self, Builder, Clock, Error, ErrorKind, LoopHandle, Promise, ReturnWhen, Task, TaskBuilder,
    TaskRef,
};

// ---------------------------------------------------------------------
// The checking allocator.

/// The system allocator, with a header before each block: a magic word
/// (live or freed), the size and the alignment it was allocated with.
struct CheckingAlloc;

const LIVE: u64 = 0x4c49_5645_424c_4f4b;
const FREED: u64 = 0x4652_4545_444f_4e45;
/// Freed memory is filled with this.
const POISON: u8 = 0xa5;
/// The header's size: three words, rounded up to 16.
const HEADER: usize = 32;

fn fail(msg: &str) -> ! {
    // SAFETY: writes a byte buffer to stderr; nothing is allocated.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    std::process::abort()
}

// SAFETY: every block comes from the system allocator, `pad` bytes before
// the pointer handed out, with a layout that is derived the same way from
// the caller's layout at both ends (checked through the header).
unsafe impl GlobalAlloc for CheckingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pad = layout.align().max(HEADER);
        let Some(size) = layout.size().checked_add(pad) else { return std::ptr::null_mut() };
        let Ok(outer) = Layout::from_size_align(size, pad) else { return std::ptr::null_mut() };
        // SAFETY: `outer` has a non-zero size.
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        // SAFETY: `pad >= HEADER`: the header lies inside the block, and
        // is aligned for words (`pad` is a multiple of 16).
        unsafe {
            let p = base.add(pad);
            p.sub(24).cast::<u64>().write(LIVE);
            p.sub(16).cast::<u64>().write(layout.size() as u64);
            p.sub(8).cast::<u64>().write(layout.align() as u64);
            let _ = LIVE_BLOCKS.try_with(|n| n.set(n.get() + 1));
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: a pointer this allocator handed out has its header just
        // before it (checked by the magic word).
        unsafe {
            let magic = p.sub(24).cast::<u64>().read();
            if magic == FREED {
                fail("attack_records: CheckingAlloc: double free\n");
            }
            if magic != LIVE {
                fail("attack_records: CheckingAlloc: free of a block it did not allocate\n");
            }
            let size = p.sub(16).cast::<u64>().read() as usize;
            let align = p.sub(8).cast::<u64>().read() as usize;
            if size != layout.size() || align != layout.align() {
                fail("attack_records: CheckingAlloc: freed with another layout than allocated\n");
            }
            p.sub(24).cast::<u64>().write(FREED);
            let _ = LIVE_BLOCKS.try_with(|n| n.set(n.get() - 1));
            std::ptr::write_bytes(p, POISON, layout.size());
            let pad = layout.align().max(HEADER);
            System.dealloc(p.sub(pad), Layout::from_size_align_unchecked(size + pad, pad));
        }
    }
}

#[global_allocator]
static ALLOCATOR: CheckingAlloc = CheckingAlloc;

thread_local! {
    /// Blocks this thread allocated, minus those it freed.
    static LIVE_BLOCKS: Cell<i64> = const { Cell::new(0) };
}

/// Blocks this thread allocated and has not freed (blocks a record cache
/// keeps count as live: the system allocator never got them back).
fn live_blocks() -> i64 {
    LIVE_BLOCKS.with(Cell::get)
}

// ---------------------------------------------------------------------
// Counting destructors.

/// How often each counted value was dropped, by id; shared across threads.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<u32>>>);

impl Ledger {
    fn new() -> Ledger {
        Ledger::default()
    }

    /// A new counted value carrying `payload`.
    fn value(&self, payload: u64) -> Counted {
        let mut drops = self.0.lock().unwrap();
        drops.push(0);
        Counted { id: drops.len() - 1, payload, ledger: self.clone() }
    }

    fn made(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Ids dropped other than once, with their counts.
    fn not_once(&self) -> Vec<(usize, u32)> {
        let drops = self.0.lock().unwrap();
        drops.iter().enumerate().filter(|&(_, &n)| n != 1).map(|(i, &n)| (i, n)).collect()
    }

    #[track_caller]
    fn assert_each_dropped_once(&self) {
        let bad = self.not_once();
        assert!(self.made() > 0, "nothing was counted");
        assert!(bad.is_empty(), "values dropped other than once (id, count): {bad:?}");
    }
}

/// A value whose drop is counted in its [`Ledger`].
struct Counted {
    id: usize,
    payload: u64,
    ledger: Ledger,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counted({})", self.payload)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut drops) = self.ledger.0.lock() {
            drops[self.id] += 1;
        }
    }
}

/// A counted value that runs `action` (which may call back into the loop)
/// when dropped.
struct Reentrant {
    _counted: Counted,
    action: Option<Box<dyn FnOnce()>>,
}

impl Reentrant {
    fn new(counted: Counted, action: impl FnOnce() + 'static) -> Reentrant {
        Reentrant { _counted: counted, action: Some(Box::new(action)) }
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        if let Some(action) = self.action.take() {
            action();
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn vrun<T: 'static>(main: impl FnOnce() -> Result<T, Error> + 'static) -> Result<T, Error> {
    Builder::new().clock(Clock::virtual_time()).run(main)
}

fn failure(msg: &str) -> Error {
    Error::new(msg.to_string())
}

// ---------------------------------------------------------------------
// Drop counting.

#[test]
fn every_captured_returned_and_callback_value_is_dropped_exactly_once() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let checked = vrun(move || {
        let mut kept = Vec::new();
        for i in 0..400u64 {
            let cap = l.value(i);
            let res = l.clone();
            let t: Task<Counted> = runtime::spawn(move || {
                let _cap = cap;
                match i % 5 {
                    0 => {}
                    1 => runtime::sleep(secs(i % 7))?,
                    2 => runtime::sleep(Duration::ZERO)?,
                    3 => return Err(failure("boom")),
                    // Still pending when `run` ends: its shutdown cancels it.
                    _ => runtime::sleep(secs(1000))?,
                }
                Ok(res.value(10_000 + i))
            });
            let cb = l.value(20_000 + i);
            t.add_done_callback(move |_| drop(cb))?;
            match i % 3 {
                0 => kept.push((i, t)),
                1 => drop(t),
                _ => {
                    t.cancel();
                    kept.push((i, t));
                }
            }
        }
        runtime::sleep(secs(10))?;
        let mut checked = 0;
        for (i, t) in &kept {
            if t.is_done() {
                if let Ok(v) = t.join() {
                    assert_eq!(v.payload, 10_000 + i, "task {i} read another task's result");
                    checked += 1;
                }
            }
        }
        Ok(checked)
    })
    .unwrap();
    assert!(checked > 50, "only {checked} results read");
    ledger.assert_each_dropped_once();
}

#[test]
fn a_task_result_read_is_its_own_when_records_are_reused() {
    fn rounds<const N: usize>() {
        vrun(|| {
            let mut last_id = None;
            for round in 0..100u64 {
                let a = runtime::spawn(move || Ok((round, [round as u8; N])));
                let (tag, bytes) = a.join()?;
                assert_eq!(tag, round);
                assert!(bytes.iter().all(|&b| b == round as u8));
                let a_id = a.id();
                assert_ne!(Some(a_id), last_id);
                drop(a);
                // The next record of this size takes the block just freed.
                let b: Task<(u64, [u8; N])> = runtime::spawn(move || {
                    runtime::sleep(secs(1))?;
                    Ok((round + 1000, [0; N]))
                });
                assert!(!b.is_done());
                assert_ne!(b.id(), a_id);
                let pending = b.result().expect_err("a new task has no result");
                assert_eq!(pending.kind(), ErrorKind::InvalidState);
                assert!(b.failure().is_none());
                assert_eq!(b.cancelling(), 0);
                assert!(b.cancel());
                assert!(b.join().unwrap_err().is_cancelled());
                last_id = Some(b.id());
                drop(b);
                let p: Promise<(u64, [u8; N])> = Promise::new()?;
                assert!(!p.is_done());
                assert_eq!(p.result().err().map(|e| e.kind()), Some(ErrorKind::InvalidState));
                p.set_result((round, [7; N])).expect("a new promise is pending");
                let (tag, bytes) = p.wait()?;
                assert_eq!(tag, round);
                assert!(bytes.iter().all(|&b| b == 7));
            }
            Ok(())
        })
        .unwrap();
    }
    rounds::<0>();
    rounds::<40>();
    rounds::<300>();
    rounds::<700>();
    rounds::<900>();
    rounds::<1000>();
    rounds::<2000>();
}

/// Checks, when dropped, that it sits at an address aligned as its type
/// says (when the result is never read, it is dropped inside the record).
macro_rules! aligned_type {
    ($name:ident, $align:literal) => {
        #[repr(align($align))]
        struct $name {
            tag: u64,
            bytes: [u8; 100],
            _counted: Counted,
            misaligned: Arc<AtomicBool>,
        }
        impl Drop for $name {
            fn drop(&mut self) {
                if (self as *const Self as usize) % $align != 0 {
                    self.misaligned.store(true, Ordering::SeqCst);
                }
                if self.bytes.iter().any(|&b| b != self.tag as u8) {
                    self.misaligned.store(true, Ordering::SeqCst);
                }
            }
        }
    };
}
aligned_type!(Align64, 64);
aligned_type!(Align4096, 4096);

#[test]
fn huge_and_over_aligned_results_are_intact_aligned_and_dropped_once() {
    let ledger = Ledger::new();
    let bad = Arc::new(AtomicBool::new(false));
    let (l, b) = (ledger.clone(), bad.clone());
    // Page-aligned values moved about by value take room on a debug build.
    let big_stacks = Builder::new().clock(Clock::virtual_time()).stack_size(1 << 20);
    big_stacks
        .run(move || {
            for i in 0..50u64 {
                let (l1, b1, l2, b2) = (l.clone(), b.clone(), l.clone(), b.clone());
                let t64 = runtime::spawn(move || {
                    runtime::sleep(secs(i % 3))?;
                    Ok(Align64 {
                        tag: i,
                        bytes: [i as u8; 100],
                        _counted: l1.value(i),
                        misaligned: b1,
                    })
                });
                let t4k = runtime::spawn(move || {
                    runtime::sleep(secs(i % 2))?;
                    Ok(Align4096 {
                        tag: i,
                        bytes: [i as u8; 100],
                        _counted: l2.value(i),
                        misaligned: b2,
                    })
                });
                let big = runtime::spawn(move || Ok(vec![0u8; 0]).map(|_: Vec<u8>| [i; 600]));
                let p: Promise<Align4096> = Promise::new()?;
                p.set_result(Align4096 {
                    tag: i,
                    bytes: [i as u8; 100],
                    _counted: l.value(i),
                    misaligned: b.clone(),
                })
                .ok()
                .unwrap();
                if i % 2 == 0 {
                    // Read: moved out of the record.
                    let v = t64.join()?;
                    assert_eq!((v.tag, v.bytes[99]), (i, i as u8));
                    let v = t4k.join()?;
                    assert_eq!((v.tag, v.bytes[0]), (i, i as u8));
                    let v = p.wait()?;
                    assert_eq!(v.tag, i);
                } else {
                    // Not read: dropped inside the record, with it.
                    runtime::sleep(secs(3))?;
                    assert!(t64.is_done() && t4k.is_done());
                }
                let arr = big.join()?;
                assert!(arr.iter().all(|&x| x == i));
            }
            Ok(())
        })
        .unwrap();
    assert!(!bad.load(Ordering::SeqCst), "a result was misaligned or corrupted in its record");
    ledger.assert_each_dropped_once();
}

/// Bursts of live records far beyond what a thread caches (16 MiB):
/// the surplus goes back to the system allocator (with the layout it was
/// allocated with, which [`CheckingAlloc`] checks), the rest is reused.
#[test]
fn bursts_beyond_the_cache_limit_free_and_reuse_blocks_soundly() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    vrun(move || {
        for round in 0..3u64 {
            // About 25 MB of records, a quarter of them suspended at once.
            let tasks: Vec<Task<(Counted, [u64; 8])>> = (0..60_000u64)
                .map(|i| {
                    let l = l.clone();
                    runtime::spawn(move || {
                        if i % 4 == 0 {
                            runtime::sleep(Duration::ZERO)?;
                        }
                        Ok((l.value(round), [i; 8]))
                    })
                })
                .collect();
            let got = runtime::gather(&tasks)?;
            for (i, (c, arr)) in got.iter().enumerate() {
                assert_eq!(c.payload, round);
                assert!(arr.iter().all(|&x| x == i as u64));
            }
            drop(got);
            drop(tasks);
            let promises: Vec<Promise<[u8; 512]>> =
                (0..5000).map(|_| Promise::new()).collect::<Result<_, _>>()?;
            for (i, p) in promises.iter().enumerate() {
                assert!(!p.is_done());
                p.set_result([i as u8; 512]).ok().unwrap();
            }
            for (i, p) in promises.iter().enumerate() {
                assert!(p.wait()?.iter().all(|&b| b == i as u8));
            }
        }
        Ok(())
    })
    .unwrap();
    ledger.assert_each_dropped_once();
}

thread_local! {
    static ZST_DROPS: Cell<u32> = const { Cell::new(0) };
}

struct ZstDrop;

impl Drop for ZstDrop {
    fn drop(&mut self) {
        ZST_DROPS.with(|n| n.set(n.get() + 1));
    }
}

#[test]
fn zero_sized_results_are_dropped_once_read_or_not() {
    ZST_DROPS.with(|n| n.set(0));
    vrun(|| {
        let tasks: Vec<Task<ZstDrop>> = (0..1000u64)
            .map(|i| {
                runtime::spawn(move || {
                    if i % 3 == 0 {
                        runtime::sleep(Duration::ZERO)?;
                    }
                    Ok(ZstDrop)
                })
            })
            .collect();
        let units: Vec<Task<()>> = (0..1000).map(|_| runtime::spawn(|| Ok(()))).collect();
        runtime::gather(&units)?;
        for (i, t) in tasks.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(t.join()?);
            } else {
                drop(t);
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ZST_DROPS.with(Cell::get), 1000);
}

// ---------------------------------------------------------------------
// Re-entrant destructors.

#[test]
fn a_result_destructor_that_spawns_joins_cancels_and_drops_other_tasks() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let lg = log.clone();
    vrun(move || {
        let l1 = l.clone();
        let victim = runtime::spawn(move || {
            runtime::sleep(secs(100))?;
            Ok(l1.value(1))
        });
        let l2 = l.clone();
        let other = runtime::spawn(move || Ok(l2.value(2)));
        let l3 = l.clone();
        let slow = runtime::spawn(move || {
            runtime::sleep(secs(1))?;
            Ok(l3.value(3))
        });
        let (v, lr, lgr) = (victim.clone(), l.clone(), lg.clone());
        let chain: Task<Reentrant> = runtime::spawn(move || {
            let c = lr.value(4);
            let lr2 = lr.clone();
            Ok(Reentrant::new(c, move || {
                // Runs inside the main task, when the chain task's record
                // (holding this result) goes with its last handle.
                v.cancel();
                drop(other);
                let spawned = runtime::spawn(move || Ok(lr2.value(5)));
                let joined = slow.join().map(|c| c.payload);
                lgr.borrow_mut().push(format!("slow joined: {joined:?}"));
                let s = spawned.join().map(|c| c.payload);
                lgr.borrow_mut().push(format!("spawned joined: {s:?}"));
                let all = runtime::all_tasks().map(|t| t.len());
                lgr.borrow_mut().push(format!("all tasks: {}", all.is_ok()));
                let me = runtime::current_task().ok().flatten().map(|t| t.name());
                lgr.borrow_mut().push(format!("current: {me:?}"));
            }))
        });
        runtime::sleep(Duration::ZERO)?;
        let main_name = runtime::current_task()?.map(|t| t.name()).unwrap();
        lg.borrow_mut().push(format!("main: {main_name:?}"));
        assert!(chain.is_done());
        drop(chain);
        runtime::sleep(secs(1))?;
        assert!(victim.is_cancelled());
        Ok(())
    })
    .unwrap();
    let log = log.borrow();
    let main = log[0].strip_prefix("main: ").unwrap();
    assert_eq!(
        log[1..],
        [
            "slow joined: Ok(3)".to_string(),
            "spawned joined: Ok(5)".to_string(),
            "all tasks: true".to_string(),
            format!("current: Some({main})"),
        ]
    );
    ledger.assert_each_dropped_once();
}

use std::rc::Rc;

/// A result that holds the only handle to the next task in a chain: the
/// records go in a cascade of nested drops.
struct Link {
    _counted: Counted,
    _next: Option<Task<Link>>,
}

#[test]
fn a_chain_of_records_each_holding_the_last_handle_to_the_next_goes_at_once() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let head = vrun(move || {
        let mut next: Option<Task<Link>> = None;
        for i in 0..1000u64 {
            let (prev, c) = (next.take(), l.value(i));
            next = Some(runtime::spawn(move || Ok(Link { _counted: c, _next: prev })));
        }
        runtime::sleep(Duration::ZERO)?;
        // Half of the chain goes inside the loop.
        let mut inner: Option<Task<Link>> = None;
        for i in 0..100u64 {
            let (prev, c) = (inner.take(), l.value(5000 + i));
            inner = Some(runtime::spawn(move || Ok(Link { _counted: c, _next: prev })));
        }
        runtime::sleep(Duration::ZERO)?;
        drop(inner);
        Ok(next)
    })
    .unwrap();
    assert_eq!(ledger.not_once().len(), 1000, "the outer chain is still held");
    // The rest goes after its loop is gone.
    drop(head);
    ledger.assert_each_dropped_once();
}

#[test]
fn a_destructor_run_after_the_loop_is_gone_can_run_a_whole_new_loop() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let sums: Rc<RefCell<Vec<Result<u64, String>>>> = Rc::default();
    let s = sums.clone();
    let kept = vrun(move || {
        let mut kept = Vec::new();
        for k in 0..20u64 {
            let (l, s) = (l.clone(), s.clone());
            kept.push(runtime::spawn(move || {
                let c = l.value(k);
                Ok(Reentrant::new(c, move || {
                    let l2 = l.clone();
                    let sum = vrun(move || {
                        let kids: Vec<Task<Counted>> = (0..50)
                            .map(|i| {
                                let l3 = l2.clone();
                                runtime::spawn(move || {
                                    runtime::sleep(secs(i % 4))?;
                                    Ok(l3.value(k * 100 + i))
                                })
                            })
                            .collect();
                        Ok(runtime::gather(&kids)?.iter().map(|c| c.payload).sum::<u64>())
                    });
                    s.borrow_mut().push(sum.map_err(|e| e.to_string()));
                }))
            }));
        }
        runtime::sleep(Duration::ZERO)?;
        Ok(kept)
    })
    .unwrap();
    assert!(sums.borrow().is_empty());
    drop(kept);
    let expected: Vec<Result<u64, String>> =
        (0..20u64).map(|k| Ok((0..50).map(|i| k * 100 + i).sum())).collect();
    assert_eq!(*sums.borrow(), expected);
    ledger.assert_each_dropped_once();
}

#[test]
fn a_destructor_inside_a_running_loop_cannot_nest_another_loop_and_nothing_leaks() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let nested: Rc<RefCell<Option<Result<u64, ErrorKind>>>> = Rc::default();
    let n = nested.clone();
    vrun(move || {
        let l2 = l.clone();
        let t = runtime::spawn(move || {
            Ok(Reentrant::new(l2.value(0), move || {
                let r = vrun(|| Ok(1u64));
                *n.borrow_mut() = Some(r.map_err(|e| e.kind()));
            }))
        });
        runtime::sleep(Duration::ZERO)?;
        drop(t);
        Ok(())
    })
    .unwrap();
    let got = nested.borrow_mut().take().expect("the destructor ran");
    assert!(got.is_err(), "a loop ran inside a running loop: {got:?}");
    ledger.assert_each_dropped_once();
}

/// "Task exception was never retrieved" is reported from the destructor of
/// the failed task's record: the exception handler then runs user code
/// while that record is being torn down. It calls back into the loop
/// (which must not hand out the dying task again), spawns and cancels.
#[test]
fn an_exception_handler_run_from_a_dying_record_sees_a_sound_loop() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let sn = seen.clone();
    let victims: Rc<RefCell<Vec<Task<Counted>>>> = Rc::default();
    let vh = victims.clone();
    let handler = move |c: &runtime::ExceptionContext| {
        let names: Vec<String> = runtime::all_tasks()
            .map(|ts| ts.iter().map(TaskRef::name).collect())
            .unwrap_or_default();
        let l2 = l.clone();
        let spawned = runtime::spawn(move || Ok(l2.value(999)));
        drop(spawned);
        if let Some(v) = vh.borrow_mut().pop() {
            v.cancel();
        }
        sn.borrow_mut().push(format!("{} | pending: {}", c.message(), names.join(",")));
    };
    let l = ledger.clone();
    let vs = victims.clone();
    Builder::new()
        .clock(Clock::virtual_time())
        .exception_handler(handler)
        .run(move || {
            for i in 0..10u64 {
                let l1 = l.clone();
                vs.borrow_mut().push(runtime::spawn(move || {
                    runtime::sleep(secs(100))?;
                    Ok(l1.value(i))
                }));
            }
            for i in 0..10u64 {
                let failed: Task<Counted> = TaskBuilder::new()
                    .name(format!("failing-{i}"))
                    .spawn(move || Err(failure("never read")))?;
                runtime::sleep(Duration::ZERO)?;
                assert!(failed.is_done());
                // The last handle: the record goes, and reports.
                drop(failed);
            }
            runtime::sleep(secs(1))?;
            Ok(())
        })
        .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 10, "{seen:?}");
    for line in seen.iter() {
        assert!(line.starts_with("Task exception was never retrieved"), "{line}");
        assert!(!line.contains("failing-"), "a dying task was handed out: {line}");
    }
    // Each report cancelled one sleeping victim (which so never made its
    // value); each spawned a task that made one.
    assert!(victims.borrow().is_empty());
    assert_eq!(ledger.made(), 10);
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Handles that outlive their loop.

#[test]
fn handles_kept_after_their_loop_is_dropped_still_answer_and_drop_once() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let lp = Builder::new().clock(Clock::virtual_time()).build();
    let (done, pending, failed, as_ref, set, unset) = lp
        .run_until_complete(move || {
            let l1 = l.clone();
            let done = runtime::spawn(move || Ok(l1.value(1)));
            let l2 = l.clone();
            let pending: Task<Counted> = runtime::spawn(move || {
                let _c = l2.value(2);
                runtime::sleep(secs(1000))?;
                unreachable!()
            });
            let failed: Task<Counted> = runtime::spawn(|| Err(failure("kept failure")));
            let set: Promise<Counted> = Promise::new()?;
            set.set_result(l.value(3)).ok().unwrap();
            let unset: Promise<Counted> = Promise::new()?;
            runtime::sleep(secs(1))?;
            let as_ref = pending.as_ref();
            Ok((done, pending, failed, as_ref, set, unset))
        })
        .unwrap();
    drop(lp);
    for debug in [
        format!("{done:?}"),
        format!("{pending:?}"),
        format!("{failed:?}"),
        format!("{as_ref:?}"),
        format!("{set:?}"),
        format!("{unset:?}"),
    ] {
        assert!(debug.contains("Task") && debug.contains("id:"), "{debug}");
    }
    assert!(done.is_done() && !done.is_cancelled());
    assert_eq!(done.result().unwrap().payload, 1);
    assert_eq!(done.result().unwrap_err().kind(), ErrorKind::InvalidState);
    // Abandoned by the loop's teardown ("Task was destroyed but it is
    // pending!"): its body was unwound, its state stays pending.
    assert!(!pending.is_done(), "{pending:?}");
    assert!(!pending.cancel());
    assert!(!as_ref.cancel());
    assert_eq!(as_ref, pending.as_ref());
    assert_eq!(pending.add_done_callback(|_| ()).unwrap_err().kind(), ErrorKind::NoRunningLoop);
    assert_eq!(failed.failure().map(|e| e.message().to_string()).as_deref(), Some("kept failure"));
    assert_eq!(set.result().unwrap().payload, 3);
    let back = unset.set_result(ledger.value(4)).expect_err("its loop is gone");
    assert_eq!(back.0.payload, 4);
    drop(back);
    assert!(!unset.cancel());
    assert_eq!(unset.as_task().name(), unset.as_task().name());
    // Dropped in an order that leaves the TaskRef last.
    drop((done, pending, failed, set, unset));
    assert_eq!(format!("{as_ref:?}").matches("TaskRef").count(), 1);
    drop(as_ref);
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Threads and thread-locals.

/// What loops run in [`Holder`] destructors returned, or how they panicked.
type Outcomes = Arc<Mutex<Vec<Result<u64, String>>>>;

/// Handles kept in a thread-local; dropped (and, if `run_loop`, a loop
/// run) by its destructor when the thread exits.
struct Holder {
    handles: RefCell<Vec<Box<dyn Any>>>,
    run_loop: Cell<Option<(Ledger, Outcomes)>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(std::mem::take(&mut *self.handles.borrow_mut()));
        if let Some((ledger, out)) = self.run_loop.take() {
            let r = catch_unwind(AssertUnwindSafe(|| {
                vrun(move || {
                    let kids: Vec<Task<Counted>> = (0..200u64)
                        .map(|i| {
                            let l = ledger.clone();
                            runtime::spawn(move || {
                                runtime::sleep(secs(i % 5))?;
                                Ok(l.value(i))
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for c in runtime::as_completed(&kids, None)? {
                        sum += c?.payload;
                    }
                    Ok(sum)
                })
            }));
            let r = match r {
                Ok(r) => r.map_err(|e| format!("error: {e}")),
                Err(p) => Err(format!("panic: {}", panic_text(&*p))),
            };
            out.lock().unwrap().push(r);
        }
    }
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

thread_local! {
    static HOLDER: Holder = const {
        Holder { handles: RefCell::new(Vec::new()), run_loop: Cell::new(None) }
    };
}

/// Runs a loop on the thread and keeps its handles in [`HOLDER`]; if
/// `early`, the holder's destructor is registered before the loop's
/// thread-locals and the record cache's exit guard (so it runs after
/// them), else after.
fn keep_handles_on_exit(ledger: &Ledger, early: bool) {
    if early {
        HOLDER.with(|_| ());
    }
    let l = ledger.clone();
    let kept = vrun(move || {
        let mut kept: Vec<Box<dyn Any>> = Vec::new();
        for i in 0..30u64 {
            let l1 = l.clone();
            let t = runtime::spawn(move || {
                runtime::sleep(secs(i % 3))?;
                Ok(l1.value(i))
            });
            let l2 = l.clone();
            let stuck: Task<Counted> = runtime::spawn(move || {
                let _c = l2.value(100 + i);
                runtime::sleep(secs(1000))?;
                unreachable!()
            });
            let p: Promise<[u8; 2000]> = Promise::new()?;
            kept.push(Box::new(stuck.as_ref()));
            kept.push(Box::new(t));
            kept.push(Box::new(stuck));
            kept.push(Box::new(p));
        }
        runtime::sleep(secs(5))?;
        Ok(kept)
    })
    .unwrap();
    HOLDER.with(|h| h.handles.borrow_mut().extend(kept));
}

#[test]
fn handles_held_in_a_thread_local_drop_once_during_thread_exit() {
    let ledger = Ledger::new();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let l = ledger.clone();
            std::thread::spawn(move || keep_handles_on_exit(&l, i % 2 == 0))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ledger.made(), 8 * 60);
    ledger.assert_each_dropped_once();
}

#[test]
fn a_loop_run_inside_a_thread_local_destructor_on_a_fresh_thread_works() {
    let ledger = Ledger::new();
    let out = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (l, o) = (ledger.clone(), out.clone());
            std::thread::spawn(move || HOLDER.with(|h| h.run_loop.set(Some((l, o)))))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let expected: u64 = (0..200).sum();
    assert_eq!(*out.lock().unwrap(), vec![Ok(expected); 4]);
    ledger.assert_each_dropped_once();
}

/// A loop started in a thread-local destructor that runs after the loop's
/// own thread-locals were destroyed (an earlier loop on the thread made
/// them) runs, or refuses with an error. It used to panic out of
/// `Installed::new` (`CORE.with`), and the panic escaping the
/// thread-local's destructor aborted the process.
#[test]
fn a_loop_run_inside_a_thread_local_destructor_after_an_earlier_loop_works() {
    let ledger = Ledger::new();
    let out = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (l, o) = (ledger.clone(), out.clone());
            std::thread::spawn(move || {
                // Registered first: destroyed last, after every thread-local
                // the earlier loop touched.
                HOLDER.with(|h| h.run_loop.set(Some((l.clone(), o))));
                keep_handles_on_exit(&l, true);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let expected: u64 = (0..200).sum();
    let got = out.lock().unwrap().clone();
    assert!(
        got.iter()
            .all(|r| *r == Ok(expected) || r.as_ref().is_err_and(|e| e.starts_with("error:"))),
        "{got:?}"
    );
    ledger.assert_each_dropped_once();
}

#[test]
fn many_threads_each_running_loops_and_exiting_read_their_own_results() {
    let ledger = Ledger::new();
    let threads: Vec<_> = (0..6u64)
        .map(|th| {
            let l = ledger.clone();
            std::thread::spawn(move || {
                for round in 0..8u64 {
                    let l = l.clone();
                    let base = th * 1_000_000 + round * 10_000;
                    let r = vrun(move || {
                        let small: Vec<Task<Counted>> = (0..200)
                            .map(|i| {
                                let l = l.clone();
                                runtime::spawn(move || {
                                    runtime::sleep(secs(i % 3))?;
                                    Ok(l.value(base + i))
                                })
                            })
                            .collect();
                        let big: Vec<Task<[u64; 200]>> =
                            (0..50).map(|i| runtime::spawn(move || Ok([base + i; 200]))).collect();
                        let got = runtime::gather(&small)?;
                        for (i, c) in got.iter().enumerate() {
                            assert_eq!(c.payload, base + i as u64);
                        }
                        for (i, t) in big.iter().enumerate() {
                            assert!(t.join()?.iter().all(|&x| x == base + i as u64));
                        }
                        Ok(got.len())
                    });
                    assert_eq!(r.unwrap(), 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ledger.made(), 6 * 8 * 200);
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Panicking destructors.

/// Panics when dropped (its counted field is still dropped by the unwind).
struct Bomb {
    _counted: Counted,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("bomb dropped");
        }
    }
}

#[test]
fn a_result_destructor_that_panics_during_record_teardown_leaves_the_loop_sound() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let caught = vrun(move || {
        let mut caught = 0;
        for i in 0..50u64 {
            let l1 = l.clone();
            let t = runtime::spawn(move || Ok(Bomb { _counted: l1.value(i) }));
            runtime::sleep(Duration::ZERO)?;
            // The last handle: the record goes, and the result's destructor
            // panics out of the drop.
            if catch_unwind(AssertUnwindSafe(|| drop(t))).is_err() {
                caught += 1;
            }
            // The loop and the record cache still work.
            let l2 = l.clone();
            let next = runtime::spawn(move || Ok(l2.value(1000 + i)));
            assert_eq!(next.join()?.payload, 1000 + i);
        }
        Ok(caught)
    })
    .unwrap();
    assert_eq!(caught, 50);
    ledger.assert_each_dropped_once();
}

fn spawn_bombs(l: &Ledger) -> Result<(), Error> {
    for i in 0..20u64 {
        let bomb = Bomb { _counted: l.value(i) };
        let c = l.value(100 + i);
        let t: Task<()> = runtime::spawn(move || {
            let _c = c;
            let _b = bomb;
            // The cancellation is dropped here, not returned: a value
            // being returned while a local's destructor panics is leaked
            // by Rust itself (rust-lang/rust#47949), which LeakSanitizer
            // would report.
            let _ = runtime::sleep(secs(1000));
            Ok(())
        });
        let cb = Bomb { _counted: l.value(200 + i) };
        t.add_done_callback(move |_| drop(cb))?;
    }
    runtime::sleep(Duration::ZERO)
}

/// A record whose value's destructor panics still gives its memory back,
/// as `std::rc::Rc` does (its `drop_slow` drops the strong handles' weak
/// count from a guard, "even if the destructor of `T` panics"). Before
/// `drop_value` did the same, an unwind out of the value's destructor
/// skipped it and the block was neither cached nor freed: each round below
/// took a new block from the system allocator. The same rounds with a
/// result that does not panic reuse one cached block (the control).
#[test]
fn a_record_whose_result_destructor_panics_is_still_freed() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let (control, grown) = vrun(move || {
        let round = |i: u64, bomb: bool| -> Result<(), Error> {
            let l1 = l.clone();
            // The same panic, not in a record: what a panic itself keeps.
            let plain = Bomb { _counted: l.value(i) };
            assert!(catch_unwind(AssertUnwindSafe(|| drop(plain))).is_err());
            if bomb {
                let t = runtime::spawn(move || Ok(Bomb { _counted: l1.value(i) }));
                runtime::sleep(Duration::ZERO)?;
                assert!(catch_unwind(AssertUnwindSafe(|| drop(t))).is_err());
            } else {
                let t = runtime::spawn(move || Ok(Some(l1.value(i))));
                runtime::sleep(Duration::ZERO)?;
                drop(t);
            }
            Ok(())
        };
        for i in 0..20 {
            round(i, false)?;
            round(i, true)?;
        }
        let before = live_blocks();
        for i in 0..300 {
            round(i, false)?;
        }
        let control = live_blocks() - before;
        let before = live_blocks();
        for i in 0..300 {
            round(i, true)?;
        }
        Ok((control, live_blocks() - before))
    })
    .unwrap();
    assert!(control < 30, "the control leaked {control} blocks in 300 rounds");
    assert!(
        grown < 30,
        "{grown} blocks still live after 300 rounds of panicking result destructors"
    );
    ledger.assert_each_dropped_once();
}

/// Pending tasks with panicking destructors in their captures and done
/// callbacks, ended by `run`'s shutdown (which cancels them: the callbacks
/// run).
#[test]
fn panicking_capture_and_callback_destructors_at_run_shutdown_drop_everything_once() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let reports = Rc::new(Cell::new(0u32));
    let r = reports.clone();
    let out = Builder::new()
        .clock(Clock::virtual_time())
        .exception_handler(move |_| r.set(r.get() + 1))
        .run(move || spawn_bombs(&l).map(|()| 7));
    assert_eq!(out.unwrap(), 7);
    // Each callback's panic is "Exception in callback"; each task's failure
    // (a panic while its cancellation unwound it) is never retrieved.
    assert_eq!(reports.get(), 40);
    ledger.assert_each_dropped_once();
}

/// The same tasks, pending when their loop is dropped: the loop abandons
/// them (their callbacks dropped unrun, their bodies unwound).
///
/// The callbacks are dropped one by one, each panic reported: before, the
/// first callback destructor's panic left the abandonment, and the task's
/// captures (`bomb`, `c`) were never dropped.
#[test]
fn panicking_callback_destructors_when_a_loop_is_dropped_with_tasks_pending_drop_everything_once() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let lp = Builder::new().clock(Clock::virtual_time()).build();
    lp.run_until_complete(move || spawn_bombs(&l)).unwrap();
    drop(lp);
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Cycles.

struct SelfHolder {
    _counted: Counted,
    me: Option<Task<SelfHolder>>,
}

#[test]
fn a_task_holding_its_own_handle_in_its_result_goes_once_the_cycle_is_broken() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let handles = vrun(move || {
        let mut handles = Vec::new();
        for i in 0..20u64 {
            let slot: Rc<RefCell<Option<Task<SelfHolder>>>> = Rc::default();
            let (s, l1) = (slot.clone(), l.clone());
            let t = runtime::spawn(move || {
                runtime::sleep(Duration::ZERO)?;
                let me = s.borrow_mut().take();
                Ok(SelfHolder { _counted: l1.value(i), me })
            });
            *slot.borrow_mut() = Some(t.clone());
            handles.push(t);
        }
        runtime::sleep(secs(1))?;
        // Half the cycles are broken inside the loop, half after it.
        for t in handles.drain(..10) {
            let v = t.result()?;
            assert!(v.me.is_some());
        }
        Ok(handles)
    })
    .unwrap();
    assert_eq!(ledger.not_once().len(), 10);
    for t in handles {
        let v = t.result().unwrap();
        assert!(v.me.is_some());
        drop(t);
        drop(v);
    }
    ledger.assert_each_dropped_once();
}

/// A task's own handles, kept in its capture.
type SelfHandles = (Task<u64>, TaskRef);

#[test]
fn a_pending_task_whose_capture_holds_its_own_handle_is_freed_by_teardown() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    vrun(move || {
        for i in 0..20u64 {
            let slot: Rc<RefCell<Option<SelfHandles>>> = Rc::default();
            let (s, c) = (slot.clone(), l.value(i));
            let t = runtime::spawn(move || {
                let _c = c;
                let _me = s;
                runtime::sleep(secs(1000))?;
                Ok(i)
            });
            *slot.borrow_mut() = Some((t.clone(), t.as_ref()));
        }
        runtime::sleep(secs(1))?;
        Ok(())
    })
    .unwrap();
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Internal futures under cancellation.

#[test]
fn cancellation_storms_over_gather_wait_shield_wait_for_and_task_groups() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    vrun(move || {
        for round in 0..15u64 {
            let kid = |i: u64| {
                let l = l.clone();
                runtime::spawn(move || {
                    runtime::sleep(secs(i % 5))?;
                    Ok(l.value(round * 1000 + i))
                })
            };
            let kids: Vec<Task<Counted>> = (0..40).map(kid).collect();
            let g = runtime::gather_handle(kids[..20].to_vec())?;
            let g2 = runtime::gather_handle(kids[10..30].to_vec())?;
            let ks = kids.clone();
            let gatherer = runtime::spawn(move || runtime::gather(&ks).map(|v| v.len()));
            let k0 = kids[0].clone();
            let shielded = runtime::spawn(move || runtime::shield(&k0).map(|c| c.payload));
            let k1 = kids[1].clone();
            let waited_for =
                runtime::spawn(move || runtime::wait_for(Some(Duration::from_millis(1500)), &k1));
            let kw = kids[20..].to_vec();
            let waiter = runtime::spawn(move || {
                runtime::wait(&kw, ReturnWhen::FirstCompleted, Some(secs(2))).map(|w| w.done.len())
            });
            let lg = l.clone();
            let group = runtime::spawn(move || {
                runtime::task_group(|tg| {
                    for i in 0..10u64 {
                        let lg = lg.clone();
                        tg.spawn(move || {
                            runtime::sleep(secs(i % 4))?;
                            if i == 7 {
                                return Err(failure("group child"));
                            }
                            Ok(lg.value(round * 1000 + 500 + i))
                        })?;
                    }
                    Ok(())
                })
            });
            let ka = kids[30..].to_vec();
            let completed = runtime::spawn(move || {
                let mut n = 0;
                for r in runtime::as_completed(&ka, Some(secs(3)))? {
                    let _ = r;
                    n += 1;
                }
                Ok(n)
            });
            runtime::sleep(Duration::from_millis(500))?;
            for _ in 0..3 {
                g.cancel();
                gatherer.cancel();
                shielded.cancel();
                waited_for.cancel();
                waiter.cancel();
                group.cancel();
                completed.cancel();
                kids[(round % 40) as usize].cancel();
                runtime::sleep(Duration::ZERO)?;
            }
            assert!(g.wait().is_err());
            let _ = g2.wait();
            assert!(gatherer.join().is_err());
            match shielded.join() {
                Ok(p) => assert_eq!(p, round * 1000),
                Err(e) => assert!(e.is_cancelled(), "{e}"),
            }
            let _ = waited_for.join();
            let _ = waiter.join();
            let _ = group.join();
            let _ = completed.join();
            runtime::sleep(secs(10))?;
            for (i, k) in kids.iter().enumerate() {
                assert!(k.is_done(), "kid {i} of round {round} still pending");
                if let Ok(v) = k.result() {
                    assert_eq!(v.payload, round * 1000 + i as u64);
                }
            }
        }
        Ok(())
    })
    .unwrap();
    ledger.assert_each_dropped_once();
}

#[test]
fn as_completed_over_thousands_of_tasks_yields_each_once_in_time_order() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    vrun(move || {
        let n = 3000u64;
        let tasks: Vec<Task<Counted>> = (0..n)
            .map(|i| {
                let l = l.clone();
                runtime::spawn(move || {
                    runtime::sleep(Duration::from_millis((i * 7919) % 1000))?;
                    Ok(l.value(i))
                })
            })
            .collect();
        let mut seen = vec![false; n as usize];
        let mut last = Duration::ZERO;
        for r in runtime::as_completed(&tasks, None)? {
            let c = r?;
            let i = c.payload as usize;
            assert!(!seen[i], "task {i} yielded twice");
            seen[i] = true;
            let expected = Duration::from_millis((c.payload * 7919) % 1000);
            let now = runtime::time()?;
            assert!(now >= expected && now >= last, "task {i} at {now:?}");
            last = now;
        }
        assert!(seen.iter().all(|&s| s));
        Ok(())
    })
    .unwrap();
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------
// Across threads.

#[test]
fn remote_tasks_and_threadsafe_spawns_deliver_their_own_results() {
    let ledger = Ledger::new();
    let l = ledger.clone();
    let sum = vrun(move || {
        let handle = LoopHandle::current()?;
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let (h, l) = (handle.clone(), l.clone());
                std::thread::spawn(move || {
                    let remotes: Vec<_> = (0..50u64)
                        .map(|i| {
                            let l = l.clone();
                            h.spawn_threadsafe(move || Ok(l.value(w * 100 + i)))
                                .unwrap_or_else(|_| panic!("the loop is running"))
                        })
                        .collect();
                    remotes
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let c = r.wait().unwrap();
                            assert_eq!(c.payload, w * 100 + i as u64);
                            c.payload
                        })
                        .sum::<u64>()
                })
            })
            .collect();
        let mut sum = 0;
        for w in workers {
            sum += runtime::offload(move || w.join().unwrap())?;
        }
        Ok(sum)
    })
    .unwrap();
    let expected: u64 = (0..4u64).flat_map(|w| (0..50).map(move |i| w * 100 + i)).sum();
    assert_eq!(sum, expected);
    ledger.assert_each_dropped_once();
}

static SPAWNED_IDS: AtomicU64 = AtomicU64::new(0);

#[test]
fn task_debug_output_names_each_handle_and_its_state() {
    let lines = vrun(|| {
        let t = runtime::spawn(|| {
            runtime::sleep(secs(1))?;
            Ok(5u8)
        });
        let c: Task<u8> = runtime::spawn(|| {
            runtime::sleep(secs(10))?;
            Ok(1)
        });
        SPAWNED_IDS.store(t.id(), Ordering::SeqCst);
        let p: Promise<String> = Promise::new()?;
        let mut lines = vec![format!("{t:?}"), format!("{:?}", t.as_ref()), format!("{p:?}")];
        runtime::sleep(secs(2))?;
        c.cancel();
        runtime::sleep(Duration::ZERO)?;
        lines.push(format!("{t:?}"));
        lines.push(format!("{c:?}"));
        Ok(lines)
    })
    .unwrap();
    let id = SPAWNED_IDS.load(Ordering::SeqCst);
    assert!(lines[0].starts_with(&format!("Task {{ id: {id}, ")), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("TaskRef {{ id: {id}, ")), "{}", lines[1]);
    assert!(lines[2].starts_with("Promise { task: Task { id: "), "{}", lines[2]);
    assert_ne!(lines[0], lines[3], "the state changed");
    assert_ne!(lines[3], lines[4]);
}

/// A loop dropped while tasks sleep with no handle left abandons them, and
/// the abandonment lets go of each sleeping task's hold on itself (its
/// waiter), so their records are freed. Counted in blocks: with the record
/// cache, a freed record's block is reused by the next cycle's records, so
/// after the first cycle the count stays flat; a record kept by a hold that
/// was never let go would add a block per task and per cycle.
#[test]
fn loops_dropped_with_detached_sleepers_free_every_record() {
    const SLEEPERS: usize = 1_000;
    std::thread::spawn(|| {
        let cycle = || {
            let event_loop = Builder::new().clock(Clock::virtual_time()).build();
            event_loop
                .run_until_complete(|| {
                    for _ in 0..SLEEPERS {
                        drop(runtime::spawn(|| runtime::sleep(Duration::MAX)));
                    }
                    runtime::sleep(Duration::from_millis(1))
                })
                .unwrap();
            drop(event_loop);
        };
        let mut after = Vec::new();
        for _ in 0..5 {
            cycle();
            after.push(live_blocks());
        }
        // The first cycles fill the caches; from then on nothing grows.
        let grown = after[4] - after[2];
        assert!(grown < (SLEEPERS / 10) as i64, "{grown} blocks more over two cycles: {after:?}");
    })
    .join()
    .unwrap();
}
