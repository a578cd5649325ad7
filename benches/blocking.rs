//! Blocking-work benchmarks: gencoro and its baseline in the same group,
//! so the figure to read is the ratio gencoro / baseline (`bash
//! benches/ratios.sh` prints them).
//!
//! Groups:
//!
//! * `offload_roundtrip`: 1,000 trivial closures, each offloaded to a
//!   thread pool and awaited before the next one is offloaded, so every
//!   iteration measures 1,000 round trips loop → pool thread → loop (two
//!   cross-thread hand-offs each). gencoro's loop and pool thread each
//!   spin for up to 50 µs before they block (see the `blocking` module),
//!   so here a hand-off seldom needs a futex wake-up; tokio's blocking
//!   pool and current-thread runtime block at once, and each hand-off
//!   wakes a sleeping thread.
//!   - `gencoro`: `runtime::offload(move || black_box(i))` from one task,
//!     in one `EventLoop::run_until_complete` on the real clock. The loop is
//!     built once, outside the timing loop, so its pool and its (one busy)
//!     pool thread stay warm between iterations, as tokio's do.
//!   - `tokio_spawn_blocking`: `tokio::task::spawn_blocking(move ||
//!     black_box(i)).await` in one `Runtime::block_on` of a current-thread
//!     runtime built once, outside the timing loop.
//!
//! Target (issue 10): gencoro ≤ 1.0× tokio.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gencoro::runtime::{self, Builder, Clock};

const ROUNDTRIPS: u64 = 1_000;

fn offload_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("offload_roundtrip");
    let event_loop = Builder::new().clock(Clock::real_time()).build();
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let sum = event_loop
                .run_until_complete(|| {
                    let mut sum = 0;
                    for i in 0..ROUNDTRIPS {
                        sum += runtime::offload(move || black_box(i))?;
                    }
                    Ok(sum)
                })
                .unwrap();
            assert_eq!(sum, ROUNDTRIPS * (ROUNDTRIPS - 1) / 2);
            sum
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    group.bench_function("tokio_spawn_blocking", |b| {
        b.iter(|| {
            let sum = rt.block_on(async {
                let mut sum = 0;
                for i in 0..ROUNDTRIPS {
                    sum += tokio::task::spawn_blocking(move || black_box(i)).await.unwrap();
                }
                sum
            });
            assert_eq!(sum, ROUNDTRIPS * (ROUNDTRIPS - 1) / 2);
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, offload_roundtrip);
criterion_main!(benches);
