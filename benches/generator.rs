//! Generator benchmarks. Each group holds gencoro and its baselines,
//! measured in the same run, so the figure to read is the ratio
//! gencoro / baseline (`bash benches/ratios.sh` prints them). Every raw
//! corosensei stack is a `DefaultStack` as large as gencoro's
//! (`DEFAULT_STACK_SIZE`), except where a fresh default stack is the point.
//!
//! * `resume_roundtrip`: one send plus one yield of a `u64` into a
//!   generator that is already running.
//!   - `gencoro`: `Generator::send`.
//!   - `corosensei`: raw `Coroutine::resume` / `Yielder::suspend` on a
//!     reused stack, the floor for any stackful generator. Its time is the
//!     machine's context-switch round trip, the unit `ratios.sh` prints
//!     beside every ratio.
//! * `create_run_finish`: create a generator, run it to completion (one
//!   yield, then a return), drop it.
//!   - `gencoro`: `Generator::new`, `start`, `resume`; the stack comes from
//!     the thread's pool and goes back to it.
//!   - `corosensei_fresh_stack`: `Coroutine::new`, which maps a fresh
//!     1 MiB default stack per coroutine and unmaps it on drop.
//!   - `corosensei_reused_stack`: `Coroutine::with_stack` on one stack
//!     mapped outside the timing loop, taken back with `into_stack` after
//!     each run: the floor, with no allocation at all.
//! * `yield_from_depth/<depth>` (depth 1, 10, 100): one value passing up
//!   through `depth` delegation levels from a leaf that yields forever.
//!   - `gencoro`: `depth` generators each `yield_from` the next, over a
//!     leaf generator; one `resume` of the outermost.
//!   - `corosensei_chain`: the hand-written equivalent, `depth` raw
//!     coroutines each resuming the next and suspending with the value it
//!     got, over a leaf coroutine; one `resume` of the outermost. This is
//!     what gencoro's `yield_from` does too (each level resumes the next:
//!     one round trip per level), so the ratio is the generator protocol's
//!     cost per level over bare context switches.

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gencoro::stack::DEFAULT_STACK_SIZE;
use gencoro::{Generator, Step, Yielder};

fn raw_stack() -> DefaultStack {
    DefaultStack::new(DEFAULT_STACK_SIZE).expect("a corosensei stack")
}

fn resume_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("resume_roundtrip");

    let g = Generator::new(|co: &Yielder<u64, u64>| {
        let mut x = 0u64;
        loop {
            x = co.yield_(x.wrapping_add(1));
        }
    });
    g.start().unwrap();
    group.bench_function("gencoro", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            match g.send(black_box(i)) {
                Ok(Step::Yielded(y)) => y,
                _ => unreachable!(),
            }
        })
    });

    let stack = raw_stack();
    let mut co = Coroutine::with_stack(stack, |y: &corosensei::Yielder<u64, u64>, mut x: u64| {
        loop {
            x = y.suspend(x.wrapping_add(1));
        }
    });
    group.bench_function("corosensei", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            match co.resume(black_box(i)) {
                CoroutineResult::Yield(y) => y,
                CoroutineResult::Return(()) => unreachable!(),
            }
        })
    });
    drop(co);
    group.finish();
}

fn create_run_finish(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_run_finish");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let g = Generator::new(|co: &Yielder<u64>| {
                co.yield_(1);
                2u64
            });
            let a = g.start().unwrap().yielded().unwrap();
            let r = g.resume().unwrap().returned().unwrap();
            black_box(a + r)
        })
    });
    group.bench_function("corosensei_fresh_stack", |b| {
        b.iter(|| {
            let mut co = Coroutine::new(|y: &corosensei::Yielder<(), u64>, ()| {
                y.suspend(1);
                2u64
            });
            let a = co.resume(()).as_yield().unwrap();
            let r = co.resume(()).as_return().unwrap();
            black_box(a + r)
        })
    });
    let mut stack = Some(raw_stack());
    group.bench_function("corosensei_reused_stack", |b| {
        b.iter(|| {
            let mut co = Coroutine::with_stack(
                stack.take().expect("the stack is back"),
                |y: &corosensei::Yielder<(), u64>, ()| {
                    y.suspend(1);
                    2u64
                },
            );
            let a = co.resume(()).as_yield().unwrap();
            let r = co.resume(()).as_return().unwrap();
            stack = Some(co.into_stack());
            black_box(a + r)
        })
    });
    group.finish();
}

/// A chain of `depth` delegators over a leaf that yields forever.
fn chain(depth: usize) -> Generator<u64> {
    if depth == 0 {
        Generator::new(|co| {
            let mut i = 0u64;
            loop {
                i += 1;
                co.yield_(i);
            }
        })
    } else {
        Generator::new(move |co| {
            let _ = co.yield_from(&chain(depth - 1));
        })
    }
}

/// A raw coroutine that forwards the values of the next one in a chain.
/// Its input says whether to stop: `true` runs the whole chain to
/// completion, so that it is not dropped suspended.
type RawLink = Coroutine<bool, u64, ()>;

/// `depth` raw forwarders over a raw leaf that yields 1, 2, 3, ... until
/// told to stop: the hand-written counterpart of [`chain`].
fn raw_chain(depth: usize) -> RawLink {
    if depth == 0 {
        Coroutine::with_stack(raw_stack(), |y: &corosensei::Yielder<bool, u64>, mut stop: bool| {
            let mut i = 0u64;
            while !stop {
                i += 1;
                stop = y.suspend(i);
            }
        })
    } else {
        let mut inner = raw_chain(depth - 1);
        Coroutine::with_stack(
            raw_stack(),
            move |y: &corosensei::Yielder<bool, u64>, mut input: bool| {
                loop {
                    match inner.resume(input) {
                        CoroutineResult::Yield(v) => input = y.suspend(v),
                        CoroutineResult::Return(()) => return,
                    }
                }
            },
        )
    }
}

fn yield_from_depth(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_from_depth");
    for depth in [1usize, 10, 100] {
        let g = chain(depth);
        g.start().unwrap();
        group.bench_with_input(BenchmarkId::new("gencoro", depth), &depth, |b, _| {
            b.iter(|| g.resume().unwrap().yielded())
        });
        drop(g);

        let mut co = raw_chain(depth);
        let (mut resumes, mut last) = (0u64, 0u64);
        group.bench_with_input(BenchmarkId::new("corosensei_chain", depth), &depth, |b, _| {
            b.iter(|| {
                resumes += 1;
                match co.resume(false) {
                    CoroutineResult::Yield(v) => {
                        last = v;
                        v
                    }
                    CoroutineResult::Return(()) => {
                        unreachable!("the leaf yields until told to stop")
                    }
                }
            })
        });
        assert_eq!(last, resumes, "the chain forwards every value the leaf yields");
        assert!(matches!(co.resume(true), CoroutineResult::Return(())));
    }
    group.finish();
}

criterion_group!(benches, resume_roundtrip, create_run_finish, yield_from_depth);
criterion_main!(benches);
