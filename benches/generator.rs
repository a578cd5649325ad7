//! Generator benchmarks. Each group pairs gencoro with a baseline measured
//! in the same run, so the figure to read is the ratio.
//!
//! * `resume_roundtrip`: one send plus one yield of a `u64`. Baseline: raw
//!   corosensei on a reused stack, the floor for any stackful generator.
//! * `create_run_finish`: create a generator, run it to completion, drop it.
//!   Baseline: corosensei with a freshly mapped stack per coroutine.
//! * `yield_from_depth`: one value passing through N delegation levels.

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gencoro::{Generator, Step, Yielder};

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

    let stack = DefaultStack::new(128 * 1024).unwrap();
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

fn yield_from_depth(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_from_depth");
    for depth in [1usize, 10, 100] {
        let g = chain(depth);
        g.start().unwrap();
        group.bench_with_input(BenchmarkId::new("gencoro", depth), &depth, |b, _| {
            b.iter(|| g.resume().unwrap().yielded())
        });
    }
    group.finish();
}

criterion_group!(benches, resume_roundtrip, create_run_finish, yield_from_depth);
criterion_main!(benches);
