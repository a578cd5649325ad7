//! TCP benchmarks on loopback: each group holds gencoro and tokio doing the
//! same work, measured in the same run; the figure to read is the ratio
//! gencoro / tokio.
//!
//! * `tcp_echo`: 100 concurrent connections to an echo server, each sending
//!   1,000 messages of 64 bytes, one at a time, and reading each echo back
//!   before the next (100,000 round trips per iteration). Server and
//!   clients are tasks of one single-threaded loop: an accept task, a task
//!   per accepted connection (read up to 4 KiB, write it back) and a task
//!   per client (`TCP_NODELAY` set on both sides).
//!   - `gencoro`: `gencoro::net`; one iteration is a whole `Builder::run`
//!     on the real clock (loop setup, the poll's creation and teardown
//!     included, as in `benches/runtime.rs`).
//!   - `tokio`: `tokio::net` with `AsyncReadExt`/`AsyncWriteExt`; one
//!     `block_on` on a current-thread runtime (I/O enabled) built once
//!     outside the timing loop.
//! * `tcp_connect`: 1,000 connections opened and closed one after another:
//!   the client task connects, an accept task takes the connection and
//!   drops it, the client reads the end of the stream (0) and drops its
//!   side. Same two sides as above.
//!
//!   The client waits for the server's close so that each connection is
//!   accepted before the next one starts, on both sides. Without that
//!   wait, gencoro's client would never suspend (a loopback connect has
//!   completed when the system call returns, and `TcpStream::connect` then
//!   returns without waiting), the accept task would not run until the
//!   listen backlog overflowed, and the next SYN would be dropped and
//!   resent a second later; tokio's `connect` always waits once for the
//!   reactor, which lets the accept task in.
//!
//! Each iteration binds a fresh listener on 127.0.0.1, port 0. Loopback
//! traffic is delivered within the system call, so both are dominated by
//! system calls and by how each runtime turns readiness into wake-ups: a
//! stack switch per wait for gencoro, a waker and a future poll for tokio.
//! One iteration takes tens of milliseconds, so the groups use 10 samples
//! of criterion's flat sampling.

use std::net::SocketAddr;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use gencoro::net::{TcpListener, TcpStream};
use gencoro::runtime::{self, Builder, Clock, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Concurrent connections in `tcp_echo`.
const CONNECTIONS: usize = 100;
/// Messages each connection sends in `tcp_echo`.
const MESSAGES: usize = 1_000;
/// Bytes in each message.
const SIZE: usize = 64;
/// Connections opened and closed in `tcp_connect`.
const CONNECTS: usize = 1_000;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn gencoro_run<T: 'static>(main: impl FnOnce() -> Result<T, Error> + 'static) -> T {
    Builder::new().clock(Clock::real_time()).run(main).expect("the run succeeds")
}

/// The message client `c` sends: distinct per client, so a crossed
/// connection would fail the check.
fn message(c: usize) -> [u8; SIZE] {
    [c as u8; SIZE]
}

fn gencoro_echo() -> usize {
    gencoro_run(|| {
        let listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        let server = runtime::spawn(move || {
            let mut handlers = Vec::with_capacity(CONNECTIONS);
            for _ in 0..CONNECTIONS {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                handlers.push(runtime::spawn(move || {
                    let mut buf = [0; 4096];
                    loop {
                        match stream.read(&mut buf)? {
                            0 => return Ok(()),
                            n => stream.write_all(&buf[..n])?,
                        }
                    }
                }));
            }
            runtime::gather(handlers)?;
            Ok(())
        });
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                runtime::spawn(move || {
                    let stream = TcpStream::connect(addr)?;
                    stream.set_nodelay(true)?;
                    let sent = message(c);
                    let mut back = [0; SIZE];
                    for _ in 0..MESSAGES {
                        stream.write_all(&sent)?;
                        stream.read_exact(&mut back)?;
                        assert_eq!(back, sent);
                    }
                    Ok(MESSAGES * SIZE)
                })
            })
            .collect();
        let bytes = runtime::gather(clients)?.into_iter().sum::<usize>();
        server.join()?;
        Ok(bytes)
    })
}

fn tokio_echo(rt: &tokio::runtime::Runtime) -> usize {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut handlers = Vec::with_capacity(CONNECTIONS);
            for _ in 0..CONNECTIONS {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                handlers.push(tokio::spawn(async move {
                    let mut buf = [0; 4096];
                    loop {
                        match stream.read(&mut buf).await.unwrap() {
                            0 => return,
                            n => stream.write_all(&buf[..n]).await.unwrap(),
                        }
                    }
                }));
            }
            for h in handlers {
                h.await.unwrap();
            }
        });
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let sent = message(c);
                    let mut back = [0; SIZE];
                    for _ in 0..MESSAGES {
                        stream.write_all(&sent).await.unwrap();
                        stream.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, sent);
                    }
                    MESSAGES * SIZE
                })
            })
            .collect();
        let mut bytes = 0;
        for c in clients {
            bytes += c.await.unwrap();
        }
        server.await.unwrap();
        bytes
    })
}

fn tcp_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("tcp_echo");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("gencoro", |b| {
        b.iter(|| assert_eq!(gencoro_echo(), CONNECTIONS * MESSAGES * SIZE))
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter(|| assert_eq!(tokio_echo(&rt), CONNECTIONS * MESSAGES * SIZE))
    });
    group.finish();
}

fn gencoro_connect() -> usize {
    gencoro_run(|| {
        let listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        let server = runtime::spawn(move || {
            for _ in 0..CONNECTS {
                drop(listener.accept()?);
            }
            Ok(CONNECTS)
        });
        for _ in 0..CONNECTS {
            let stream = TcpStream::connect(addr)?;
            // The server's close: the end of the stream.
            assert_eq!(stream.read(&mut [0; 1])?, 0);
        }
        server.join()
    })
}

fn tokio_connect(rt: &tokio::runtime::Runtime) -> usize {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..CONNECTS {
                drop(listener.accept().await.unwrap());
            }
            CONNECTS
        });
        for _ in 0..CONNECTS {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            // The server's close: the end of the stream.
            assert_eq!(stream.read(&mut [0; 1]).await.unwrap(), 0);
        }
        server.await.unwrap()
    })
}

fn tcp_connect(c: &mut Criterion) {
    let mut group = c.benchmark_group("tcp_connect");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("gencoro", |b| b.iter(|| assert_eq!(gencoro_connect(), CONNECTS)));
    let rt = tokio_rt();
    group.bench_function("tokio", |b| b.iter(|| assert_eq!(tokio_connect(&rt), CONNECTS)));
    group.finish();
}

criterion_group!(benches, tcp_echo, tcp_connect);
criterion_main!(benches);
