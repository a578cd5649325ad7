//! Synchronisation benchmarks: each group holds gencoro and a baseline doing
//! the same work, measured in the same run; the figure to read is the ratio
//! gencoro / baseline.
//!
//! * `queue_pingpong`: 10,000 `u64` go through a queue of capacity 1 from a
//!   producer task to a consumer task, which adds them up.
//!   - `gencoro`: `gencoro::sync::Queue::bounded(1)`; the producer is a
//!     spawned task, the consumer is `main`. One iteration is a whole
//!     `Builder::run` on the virtual clock (loop setup and teardown
//!     included, as in `benches/runtime.rs`).
//!   - `tokio_mpsc`: `tokio::sync::mpsc::channel(1)`; the producer is a
//!     `tokio::spawn`ed task, the consumer is the `block_on` future, on a
//!     current-thread runtime built once outside the timing loop.
//!
//!   With capacity 1 every item makes each side wait once: gencoro parks
//!   the task (no allocation per wait) and switches stacks twice per item;
//!   tokio registers a waker.

use criterion::{Criterion, criterion_group, criterion_main};
use gencoro::runtime::{self, Builder, Clock, Error};
use gencoro::sync::Queue;

const ITEMS: u64 = 10_000;
const SUM: u64 = ITEMS * (ITEMS - 1) / 2;

fn queue_pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_pingpong");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            Builder::new()
                .clock(Clock::virtual_time())
                .run(|| {
                    let queue = Queue::bounded(1);
                    let tx = queue.clone();
                    let producer = runtime::spawn(move || -> Result<(), Error> {
                        for i in 0..ITEMS {
                            tx.put(i)?;
                        }
                        Ok(())
                    });
                    let mut sum = 0;
                    for _ in 0..ITEMS {
                        sum += queue.get()?;
                    }
                    producer.join()?;
                    assert_eq!(sum, SUM);
                    Ok(sum)
                })
                .unwrap()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    group.bench_function("tokio_mpsc", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1);
                let producer = tokio::spawn(async move {
                    for i in 0..ITEMS {
                        tx.send(i).await.unwrap();
                    }
                });
                let mut sum = 0;
                for _ in 0..ITEMS {
                    sum += rx.recv().await.unwrap();
                }
                producer.await.unwrap();
                assert_eq!(sum, SUM);
                sum
            })
        })
    });
    group.finish();
}

criterion_group!(benches, queue_pingpong);
criterion_main!(benches);
