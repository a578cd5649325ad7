//! `gencoro::net`: TCP on the loop, over loopback (127.0.0.1) only.
//!
//! Server and clients run as tasks of one loop. Most tests run on the
//! virtual clock (loopback traffic is delivered within the system call, so
//! socket readiness is there when the loop looks); the tests of the poll's
//! cross-thread wake-ups use the real clock, briefly. Each test runs under
//! a watchdog (a hung poll fails the test instead of hanging it), and the
//! tests take one lock so the file-descriptor count is not disturbed by
//! another test's sockets.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "common/net_support.rs"]
mod net_support;
use gencoro::net::{TcpListener, TcpStream};
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, LoopHandle};
use net_support::{bounded, loopback, open_fds, virtual_run};

/// Serves echo on `listener`: a task per connection, until `connections`
/// were served.
fn echo_server(listener: TcpListener, connections: usize) -> runtime::Task<()> {
    runtime::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept()?;
            handlers.push(runtime::spawn(move || {
                let mut buf = [0; 512];
                loop {
                    let n = stream.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    stream.write_all(&buf[..n])?;
                }
            }));
        }
        for h in handlers {
            h.join()?;
        }
        Ok(())
    })
}

/// The bytes client `c` sends in round `r`: different for every client,
/// round and position, of a length that varies.
fn message(c: usize, r: usize) -> Vec<u8> {
    let len = 1 + (c * 7 + r * 13) % 300;
    (0..len).map(|i| (c * 31 + r * 17 + i) as u8).collect()
}

/// Each client gets back exactly what it sent, with many clients at once
/// on one loop, the server in the same loop.
#[test]
fn echo_serves_many_concurrent_clients_on_one_loop() {
    echo_many(true);
}

/// The same on the real clock, where the loop blocks in its poll whenever
/// every task waits on a socket.
#[test]
fn echo_serves_many_concurrent_clients_on_the_real_clock() {
    echo_many(false);
}

fn echo_many(virtual_clock: bool) {
    const CLIENTS: usize = 64;
    const ROUNDS: usize = 20;
    let checked = bounded(Duration::from_secs(60), move || {
        let clock = if virtual_clock { Clock::virtual_time() } else { Clock::real_time() };
        Builder::new()
            .clock(clock)
            .run(|| {
                let listener = TcpListener::bind(loopback())?;
                let addr = listener.local_addr()?;
                let server = echo_server(listener, CLIENTS);
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|c| {
                        runtime::spawn(move || {
                            let stream = TcpStream::connect(addr)?;
                            stream.set_nodelay(true)?;
                            let mut bytes = 0;
                            for r in 0..ROUNDS {
                                let sent = message(c, r);
                                stream.write_all(&sent)?;
                                let mut back = vec![0; sent.len()];
                                stream.read_exact(&mut back)?;
                                assert_eq!(back, sent, "client {c}, round {r}");
                                bytes += sent.len();
                                // Let the other clients interleave.
                                runtime::sleep(Duration::ZERO)?;
                            }
                            stream.shutdown(Shutdown::Write)?;
                            assert_eq!(stream.read(&mut [0; 8])?, 0, "the server closes after us");
                            Ok(bytes)
                        })
                    })
                    .collect();
                let mut total = 0;
                for c in clients {
                    total += c.join()?;
                }
                server.join()?;
                Ok(total)
            })
            .unwrap()
    });
    let expected: usize =
        (0..CLIENTS).flat_map(|c| (0..ROUNDS).map(move |r| message(c, r).len())).sum();
    assert_eq!(checked, expected);
}

/// With a timer armed far ahead, socket events win over the time jump:
/// the whole exchange happens at virtual time zero.
#[test]
fn socket_events_win_over_a_virtual_time_jump() {
    let (now, slept) = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let far = runtime::spawn(|| runtime::sleep(Duration::from_secs(1000)));
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let server = echo_server(listener, 8);
            let clients: Vec<_> = (0..8)
                .map(|c| {
                    runtime::spawn(move || {
                        let stream = TcpStream::connect(addr)?;
                        for r in 0..10 {
                            let sent = message(c, r);
                            stream.write_all(&sent)?;
                            let mut back = vec![0; sent.len()];
                            stream.read_exact(&mut back)?;
                            assert_eq!(back, sent);
                        }
                        Ok(())
                    })
                })
                .collect();
            for client in clients {
                client.join()?;
            }
            server.join()?;
            let now = runtime::time()?;
            far.join()?;
            Ok((now, runtime::time()?))
        })
        .unwrap()
    });
    assert_eq!(now, Duration::ZERO, "no time passed while sockets had events");
    assert_eq!(slept, Duration::from_secs(1000));
}

/// A 1-byte buffer on both sides: every write takes at most one byte and
/// every read returns at most one, and all bytes arrive in order.
#[test]
fn one_byte_reads_and_writes_transfer_everything_in_order() {
    let got = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let sender = runtime::spawn(move || {
                let stream = TcpStream::connect(addr)?;
                let data: Vec<u8> = (0..=255).collect();
                for i in 0..data.len() {
                    assert_eq!(stream.write(&data[i..i + 1])?, 1);
                    if i % 16 == 0 {
                        runtime::sleep(Duration::ZERO)?;
                    }
                }
                Ok(())
            });
            let (stream, _) = listener.accept()?;
            let mut got = Vec::new();
            let mut byte = [0; 1];
            loop {
                match stream.read(&mut byte)? {
                    0 => break,
                    n => {
                        assert_eq!(n, 1);
                        got.push(byte[0]);
                    }
                }
            }
            sender.join()?;
            Ok(got)
        })
        .unwrap()
    });
    assert_eq!(got, (0..=255).collect::<Vec<u8>>());
}

/// A reader parked while the peer writes a little and closes gets the
/// bytes, then 0; `read_exact` for more than was sent reports
/// `UnexpectedEof`.
#[test]
fn the_peer_closing_mid_read_ends_the_read_with_zero() {
    let (got, then, exact) = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let peer = runtime::spawn(move || {
                let (a, _) = listener.accept()?;
                let (b, _) = listener.accept()?;
                // Both readers are parked by now.
                runtime::sleep(Duration::from_millis(10))?;
                a.write_all(b"abc")?;
                b.write_all(b"xy")?;
                Ok(()) // both dropped: closed
            });
            let first = TcpStream::connect(addr)?;
            let second = TcpStream::connect(addr)?;
            let exact = runtime::spawn(move || {
                let mut five = [0; 5];
                Ok(second.read_exact(&mut five).unwrap_err())
            });
            let mut buf = [0; 16];
            let n = first.read(&mut buf)?;
            let mut got = buf[..n].to_vec();
            // The close may come with the bytes or after them.
            let mut then = first.read(&mut buf)?;
            if then > 0 {
                got.extend_from_slice(&buf[..then]);
                then = first.read(&mut buf)?;
            }
            peer.join()?;
            Ok((got, then, exact.join()?))
        })
        .unwrap()
    });
    assert_eq!(got, b"abc");
    assert_eq!(then, 0);
    assert_eq!(exact.kind(), ErrorKind::Io);
    assert_eq!(exact.io_kind(), Some(std::io::ErrorKind::UnexpectedEof));
}

/// Connecting to a port nobody listens on fails with the I/O kind
/// `ConnectionRefused`, inside an `ErrorKind::Io` error, never a panic.
#[test]
fn connecting_to_a_closed_port_is_refused() {
    let e = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let addr = TcpListener::bind(loopback())?.local_addr()?; // closed again
            Ok(TcpStream::connect(addr).unwrap_err())
        })
        .unwrap()
    });
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    let io = e.downcast_ref::<std::io::Error>().expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// A read cancelled by `wait_for`'s timeout consumes nothing: the bytes
/// the peer sends afterwards are all returned by the next read, and the
/// cancelled read's entry wakes nobody.
#[test]
fn a_read_cancelled_by_wait_for_loses_nothing() {
    let (timed_out, got) = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let client = Rc::new(TcpStream::connect(listener.local_addr()?)?);
            let (server, _) = listener.accept()?;
            let c = client.clone();
            let reader = runtime::spawn(move || {
                let mut buf = [0; 64];
                let n = c.read(&mut buf)?;
                Ok(buf[..n].to_vec())
            });
            let e = runtime::wait_for(Some(Duration::from_secs(1)), &reader).unwrap_err();
            server.write_all(b"after the timeout")?;
            let mut buf = [0; 64];
            let n = client.read(&mut buf)?;
            Ok((e.kind(), buf[..n].to_vec()))
        })
        .unwrap()
    });
    assert_eq!(timed_out, ErrorKind::Timeout);
    assert_eq!(got, b"after the timeout");
}

/// A read cancelled in the same iteration its socket became readable
/// (cancelled before the poll's wake-up, or after it was queued) returns
/// the cancellation, and the next read returns every byte.
#[test]
fn a_read_cancelled_as_data_arrives_loses_nothing() {
    for cancel_after_wake in [false, true] {
        let (cancelled, got) = bounded(Duration::from_secs(30), move || {
            virtual_run(move || {
                let listener = TcpListener::bind(loopback())?;
                let client = Rc::new(TcpStream::connect(listener.local_addr()?)?);
                let (server, _) = listener.accept()?;
                let c = client.clone();
                let reader = runtime::spawn(move || {
                    let mut buf = [0; 64];
                    let n = c.read(&mut buf)?;
                    Ok(buf[..n].to_vec())
                });
                runtime::sleep(Duration::ZERO)?; // the reader parks
                server.write_all(b"racing bytes")?;
                if cancel_after_wake {
                    // The next iteration's poll queues the reader's wake-up
                    // behind this task's step.
                    runtime::sleep(Duration::ZERO)?;
                }
                assert!(reader.cancel());
                let outcome = reader.join().map(|_| ()).unwrap_err();
                let mut buf = [0; 64];
                let n = client.read(&mut buf)?;
                Ok((outcome.is_cancelled(), buf[..n].to_vec()))
            })
            .unwrap()
        });
        assert!(cancelled, "cancel_after_wake: {cancel_after_wake}");
        assert_eq!(got, b"racing bytes", "cancel_after_wake: {cancel_after_wake}");
    }
}

/// 10,000 sockets (5,000 connections, both ends) opened and closed, in
/// batches of 50 connections, leave no file descriptor behind once the
/// loop has ended; a loop that never used a socket opens none (no poll is
/// made for it).
#[test]
fn ten_thousand_sockets_opened_and_closed_leave_no_fd_behind() {
    let (before, during_plain, after) = bounded(Duration::from_secs(60), || {
        let before = open_fds();
        let during_plain = virtual_run(|| {
            runtime::sleep(Duration::from_secs(1))?;
            Ok(open_fds())
        })
        .unwrap();
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            for _ in 0..100 {
                let clients: Vec<_> =
                    (0..50).map(|_| runtime::spawn(move || TcpStream::connect(addr))).collect();
                let mut accepted = Vec::new();
                for _ in 0..50 {
                    accepted.push(listener.accept()?.0);
                }
                for c in clients {
                    c.join()?.write_all(b"x")?;
                }
                for s in &accepted {
                    let mut one = [0; 1];
                    s.read_exact(&mut one)?;
                }
            }
            Ok(())
        })
        .unwrap();
        (before, during_plain, open_fds())
    });
    assert_eq!(during_plain, before, "a loop without sockets opens no descriptor");
    assert_eq!(after, before, "every socket, and the loop's poll, is closed");
}

/// A loop blocked in its poll (a task waits on a socket, nothing else can
/// happen) is woken by `call_soon_threadsafe` from another thread, on the
/// real clock: the call runs, and spawns the connection the accept waits
/// for.
#[test]
fn call_soon_threadsafe_wakes_a_loop_blocked_in_its_poll() {
    let elapsed = bounded(Duration::from_secs(30), || {
        runtime::run(|| {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let handle = LoopHandle::current()?;
            let start = Instant::now();
            let poster = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                assert!(handle.call_soon_threadsafe(move || {
                    runtime::spawn(move || TcpStream::connect(addr).map(drop));
                }));
            });
            // Only the socket can wake this task: the loop blocks in its
            // poll with no timeout.
            listener.accept()?;
            let elapsed = start.elapsed();
            poster.join().unwrap();
            Ok(elapsed)
        })
        .unwrap()
    });
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// On the real clock, a loop waiting in its poll for its next timer (far
/// off) while a socket is registered is woken early by a post.
#[test]
fn a_post_wakes_a_poll_waiting_for_a_timer() {
    let elapsed = bounded(Duration::from_secs(30), || {
        runtime::run(|| {
            let listener = TcpListener::bind(loopback())?;
            // Register the listener: an accept that waits, cancelled at the
            // end.
            let accepting = runtime::spawn(move || listener.accept().map(drop));
            runtime::sleep(Duration::ZERO)?;
            let handle = LoopHandle::current()?;
            let start = Instant::now();
            let poster = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                handle.call_soon_threadsafe(|| {
                    for task in runtime::all_tasks().unwrap() {
                        if task.name() == "sleeper" {
                            task.cancel();
                        }
                    }
                })
            });
            let sleeper = runtime::TaskBuilder::new()
                .name("sleeper")
                .spawn(|| runtime::sleep(Duration::from_secs(20)))?;
            let outcome = sleeper.join();
            let elapsed = start.elapsed();
            assert!(outcome.unwrap_err().is_cancelled());
            assert!(poster.join().unwrap());
            accepting.cancel();
            let _ = accepting.join();
            Ok(elapsed)
        })
        .unwrap()
    });
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// The `std::io` traits suspend like the inherent methods, and a
/// cancellation that comes through them is still a cancellation after `?`.
#[test]
fn std_io_errors_carry_cancellations_back_unchanged() {
    let kind = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let client = TcpStream::connect(listener.local_addr()?)?;
            let (_server, _) = listener.accept()?;
            let reader = runtime::spawn(move || {
                let mut buf = [0; 4];
                std::io::Read::read(&mut &client, &mut buf)?;
                Ok(())
            });
            runtime::sleep(Duration::ZERO)?;
            reader.cancel();
            Ok(reader.join().unwrap_err().kind())
        })
        .unwrap()
    });
    assert_eq!(kind, ErrorKind::Cancelled);
}

/// On the virtual clock, outside work on real time holds virtual time; a
/// loop that blocks in its poll for it (a socket is registered) is woken
/// when the work ends (`end_work` wakes the poll), and only then lets the
/// time pass.
#[test]
fn the_end_of_outside_work_wakes_a_virtual_loop_blocked_in_its_poll() {
    let (slept, held_for) = bounded(Duration::from_secs(30), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let accepting = runtime::spawn(move || listener.accept().map(drop));
            runtime::sleep(Duration::ZERO)?; // the listener registers
            let guard = LoopHandle::current()?.in_flight();
            let start = Instant::now();
            let holder = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                drop(guard);
            });
            runtime::sleep(Duration::from_secs(5))?;
            let held_for = start.elapsed();
            holder.join().unwrap();
            accepting.cancel();
            let _ = accepting.join();
            Ok((runtime::time()?, held_for))
        })
        .unwrap()
    });
    assert_eq!(slept, Duration::from_secs(5));
    assert!(
        held_for >= Duration::from_millis(50),
        "virtual time waited for the guard: {held_for:?}"
    );
}

/// An offloaded closure's result, posted from the pool, reaches a loop
/// that blocks in its poll, and is delivered while a socket still waits.
#[test]
fn an_offload_result_reaches_a_loop_blocked_in_its_poll() {
    let v = bounded(Duration::from_secs(30), || {
        runtime::run(|| {
            let listener = TcpListener::bind(loopback())?;
            let accepting = runtime::spawn(move || listener.accept().map(drop));
            let v = runtime::offload(|| {
                std::thread::sleep(Duration::from_millis(20));
                42
            })?;
            accepting.cancel();
            let _ = accepting.join();
            Ok(v)
        })
        .unwrap()
    });
    assert_eq!(v, 42);
}

/// A schedule-driven run (`gencoro::testing`) with sockets: the poll never
/// blocks there, yet loopback echo completes under every schedule tried,
/// and the bytes come back intact.
#[test]
fn echo_completes_in_schedule_driven_runs() {
    let explored = bounded(Duration::from_secs(60), || {
        gencoro::testing::check_seeded(7, 20, || -> Result<(), Error> {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let server = echo_server(listener, 3);
            let clients: Vec<_> = (0..3)
                .map(|c| {
                    runtime::spawn(move || {
                        let stream = TcpStream::connect(addr)?;
                        for r in 0..3 {
                            let sent = message(c, r);
                            stream.write_all(&sent)?;
                            let mut back = vec![0; sent.len()];
                            stream.read_exact(&mut back)?;
                            if back != sent {
                                return Err(Error::new(format!("client {c} round {r}: garbled")));
                            }
                        }
                        stream.shutdown(Shutdown::Write)?;
                        Ok(())
                    })
                })
                .collect();
            for c in clients {
                c.join()?;
            }
            server.join()
        })
        .map(|e| e.schedules_run)
        .map_err(|f| f.message().to_owned())
    });
    assert_eq!(explored, Ok(20));
}

/// A socket made in one run and used in the next moves to the new loop
/// (the old one has ended): a listener bound outside any loop serves two
/// runs in turn.
#[test]
fn a_socket_moves_to_the_next_loop_that_waits_on_it() {
    let served = bounded(Duration::from_secs(30), || {
        let listener = Rc::new(TcpListener::bind(loopback()).unwrap());
        let addr = listener.local_addr().unwrap();
        let mut served = Vec::new();
        for round in 0..2u8 {
            let l = listener.clone();
            served.push(
                virtual_run(move || {
                    let client = runtime::spawn(move || {
                        let s = TcpStream::connect(addr)?;
                        s.write_all(&[round])?;
                        Ok(())
                    });
                    let (stream, _) = l.accept()?;
                    let mut byte = [0; 1];
                    stream.read_exact(&mut byte)?;
                    client.join()?;
                    Ok(byte[0])
                })
                .unwrap(),
            );
        }
        served
    });
    assert_eq!(served, [0, 1]);
}

/// A connect always suspends once, even on loopback where the kernel
/// finishes the handshake inside the call (as Python's `sock_connect`
/// does): a task connecting in a loop lets the accepting task keep up, so
/// the listen backlog never fills.
#[test]
fn a_loop_of_connects_lets_the_acceptor_keep_up() {
    bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let accepted = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let count = accepted.clone();
            let acceptor = runtime::spawn(move || {
                let mut kept = Vec::new();
                for _ in 0..300 {
                    kept.push(listener.accept()?.0);
                    count.set(count.get() + 1);
                }
                Ok(kept.len())
            });
            let mut streams = Vec::new();
            for i in 0..300 {
                streams.push(TcpStream::connect(addr)?);
                assert!(
                    accepted.get() + 2 >= i,
                    "connect {i} returned with only {} accepted",
                    accepted.get()
                );
            }
            assert_eq!(acceptor.join()?, 300);
            Ok(())
        })
        .unwrap()
    });
}
