//! `gencoro::net` behaviour that mutation testing (`.ci/mutants --net`)
//! found no other test to check: what a stream or listener reports about
//! itself, the `std::io` traits, shutdown, the end of a stream after a
//! short read, readers left parked when another is cancelled, and who gets
//! a signal once a wait for it was cancelled.
//!
//! Loopback (127.0.0.1) only, each test under a watchdog, one at a time
//! (the signal tests raise SIGINT in this process: only while a task of
//! theirs can take it), on the virtual clock except where a signal's
//! delivery from the `gencoro-signals` thread must be waited for.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "common/net_support.rs"]
mod net_support;
use gencoro::net::signal::{self, Signal};
use gencoro::net::{TcpListener, TcpStream};
use gencoro::runtime::{self, Builder, Error};
use net_support::{bounded, loopback, virtual_run};

/// The examples this file runs.
#[path = "common/examples.rs"]
mod examples;
use examples::KillOnDrop as Child;

/// The binary of example `name`.
fn example(name: &str) -> std::path::PathBuf {
    examples::example(&["echo_server"], &[], name)
}

/// A connected pair made inside the running loop: `(client, server)`.
fn connected() -> Result<(TcpStream, TcpStream), Error> {
    let listener = TcpListener::bind(loopback())?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// A listener's `Debug` names its bound address, a stream's its local and
/// peer addresses (the socket's own `Debug`, not an empty field).
#[test]
fn debug_output_shows_the_socket_and_its_addresses() {
    let (listener_dbg, listener_addr, stream_dbg, local, peer) =
        bounded(Duration::from_secs(20), || {
            virtual_run(|| {
                let listener = TcpListener::bind(loopback())?;
                let client = TcpStream::connect(listener.local_addr()?)?;
                let _accepted = listener.accept()?;
                Ok((
                    format!("{listener:?}"),
                    listener.local_addr()?.to_string(),
                    format!("{client:?}"),
                    client.local_addr()?.to_string(),
                    client.peer_addr()?.to_string(),
                ))
            })
            .unwrap()
        });
    assert!(listener_dbg.starts_with("TcpListener"), "{listener_dbg}");
    assert!(listener_dbg.contains(&listener_addr), "{listener_dbg} lacks {listener_addr}");
    assert!(stream_dbg.starts_with("TcpStream"), "{stream_dbg}");
    assert!(stream_dbg.contains(&local), "{stream_dbg} lacks {local}");
    assert!(stream_dbg.contains(&peer), "{stream_dbg} lacks {peer}");
}

/// `set_nodelay` sets `TCP_NODELAY` and `nodelay` reads it back, both
/// ways; a new connection starts without it.
#[test]
fn set_nodelay_turns_nodelay_on_and_off() {
    let states = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (client, _server) = connected()?;
            let initial = client.nodelay()?;
            client.set_nodelay(true)?;
            let on = client.nodelay()?;
            client.set_nodelay(false)?;
            Ok([initial, on, client.nodelay()?])
        })
        .unwrap()
    });
    assert_eq!(states, [false, true, false]);
}

/// Shutting the writing side down makes the peer read the end of the
/// stream (0) while the stream itself stays open, and the other direction
/// still carries bytes.
#[test]
fn shutting_down_the_write_side_ends_the_peers_stream_but_not_the_reverse_one() {
    let (end, reply) = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (client, server) = connected()?;
            client.write_all(b"last")?;
            client.shutdown(Shutdown::Write)?;
            let mut got = [0; 4];
            server.read_exact(&mut got)?;
            assert_eq!(&got, b"last");
            let end = server.read(&mut [0; 8])?;
            server.write_all(b"reply")?;
            let mut reply = [0; 5];
            client.read_exact(&mut reply)?;
            Ok((end, reply))
        })
        .unwrap()
    });
    assert_eq!(end, 0);
    assert_eq!(&reply, b"reply");
}

/// `std::io::Read` and `Write` on a stream and on `&TcpStream` move the
/// bytes they report, and say how many.
#[test]
fn std_io_read_and_write_on_owned_and_borrowed_streams_move_the_bytes() {
    let (written, read, got) = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (mut client, mut server) = connected()?;
            let written =
                [Write::write(&mut client, b"owned ")?, Write::write(&mut &client, b"borrowed")?];
            Write::flush(&mut client)?;
            Write::flush(&mut &client)?;
            let mut got = Vec::new();
            let mut read = Vec::new();
            let mut buf = [0; 6];
            let n = Read::read(&mut server, &mut buf)?;
            read.push(n);
            got.extend_from_slice(&buf[..n]);
            let mut rest = [0; 64];
            while got.len() < 14 {
                let n = Read::read(&mut &server, &mut rest)?;
                assert_ne!(n, 0, "the stream ended early");
                read.push(n);
                got.extend_from_slice(&rest[..n]);
            }
            Ok((written, read, got))
        })
        .unwrap()
    });
    assert_eq!(written, [6, 8]);
    assert_eq!(read.first(), Some(&6), "{read:?}");
    assert_eq!(read.iter().sum::<usize>(), 14);
    assert_eq!(got, b"owned borrowed");
}

/// A reader that parked before the peer wrote a little and closed gets the
/// bytes with a short read, then 0: the close came with the readiness the
/// loop fetched, so the read after the short one must not park for an
/// event that will never come.
#[test]
fn a_short_read_of_a_closed_stream_is_followed_by_the_end_of_stream() {
    let (first, second) = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (client, server) = connected()?;
            let reader = runtime::spawn(move || {
                let mut buf = [0; 16];
                let first = client.read(&mut buf)?;
                let second = client.read(&mut buf)?;
                Ok((buf[..first].to_vec(), second))
            });
            runtime::sleep(Duration::ZERO)?; // the reader parks
            server.write_all(b"abc")?;
            drop(server);
            reader.join()
        })
        .unwrap()
    });
    assert_eq!(first, b"abc");
    assert_eq!(second, 0);
}

/// Three tasks parked reading one stream, the middle one cancelled: the
/// other two stay parked and are woken by the data (each reads one byte).
#[test]
fn cancelling_one_parked_reader_leaves_the_others_parked() {
    let got = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (client, server) = connected()?;
            let client = Rc::new(client);
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let c = client.clone();
                    runtime::spawn(move || {
                        let mut one = [0; 1];
                        let n = c.read(&mut one)?;
                        Ok(one[..n].to_vec())
                    })
                })
                .collect();
            runtime::sleep(Duration::ZERO)?; // all three park
            assert!(readers[1].cancel());
            runtime::sleep(Duration::ZERO)?; // the cancelled one unwinds
            server.write_all(b"xy")?;
            let mut got = Vec::new();
            for (i, r) in readers.into_iter().enumerate() {
                match r.join() {
                    Ok(bytes) => got.extend(bytes),
                    Err(e) => assert!(i == 1 && e.is_cancelled(), "reader {i}: {e:?}"),
                }
            }
            got.sort_unstable();
            Ok(got)
        })
        .unwrap()
    });
    assert_eq!(got, b"xy");
}

/// The signals' names and numbers (Linux's), and their `Display`.
#[test]
fn signals_are_named_and_numbered_as_on_linux() {
    assert_eq!(Signal::Interrupt.name(), "SIGINT");
    assert_eq!(Signal::Terminate.name(), "SIGTERM");
    assert_eq!(Signal::Interrupt.to_string(), "SIGINT");
    assert_eq!(Signal::Terminate.to_string(), "SIGTERM");
    assert_eq!(Signal::Interrupt.number(), 2);
    assert_eq!(Signal::Terminate.number(), 15);
}

/// In a run that cancels on Ctrl-C, a task's wait for SIGINT that was
/// cancelled no longer counts as waiting: the next SIGINT cancels the main
/// task (rule 2) instead of going to the cancelled wait. Real clock: the
/// cancellation comes from the signal thread.
#[test]
fn a_cancelled_signal_wait_leaves_the_next_sigint_to_the_main_task() {
    let outcome = bounded(Duration::from_secs(30), || {
        Builder::new().cancel_on_ctrl_c(true).run(|| {
            let waiter = runtime::spawn(|| signal::wait(Signal::Interrupt));
            runtime::sleep(Duration::ZERO)?; // it waits
            assert!(waiter.cancel());
            assert!(waiter.join().unwrap_err().is_cancelled());
            signal_hook::low_level::raise(Signal::Interrupt.number()).unwrap();
            // Cancelled here, at once; were the cancelled wait still
            // counted, it would take the signal and main would sleep on.
            runtime::sleep(Duration::from_secs(5))?;
            Ok("main was not cancelled")
        })
    });
    let e = outcome.unwrap_err();
    assert!(e.is_cancelled(), "{e:?}");
}

/// Counts its drops.
struct DropCount(Rc<Cell<u32>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A parked read that is cancelled leaves nothing of its task in the
/// socket's line: once the task has ended (here with a value it made on
/// its cancellation) and its handle is dropped, that value is dropped,
/// while the socket stays open and idle.
#[test]
fn a_cancelled_read_leaves_nothing_of_its_task_behind_on_the_socket() {
    let (while_open, after_close) = bounded(Duration::from_secs(20), || {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let while_open = virtual_run(move || {
            let (client, server) = connected()?;
            let client = Rc::new(client);
            let c = client.clone();
            let reader = runtime::spawn(move || match c.read(&mut [0; 8]) {
                Err(e) if e.is_cancelled() => Ok(DropCount(d)),
                other => panic!("the read ended with {other:?}"),
            });
            runtime::sleep(Duration::ZERO)?; // it parks
            assert!(reader.cancel());
            runtime::sleep(Duration::ZERO)?; // it ends, with its DropCount
            assert!(reader.is_done());
            drop(reader);
            runtime::sleep(Duration::ZERO)?;
            let while_open = drops.get();
            drop((client, server));
            Ok((while_open, drops))
        })
        .unwrap();
        (while_open.0, while_open.1.get())
    });
    assert_eq!(while_open, 1, "the ended task's value was kept alive by the socket");
    assert_eq!(after_close, 1);
}

// ---------------------------------------------------------------------
// Child processes: signals that may end the process, and `run`'s default
// (which only the main thread gets, so only a program's, not a test's).

const CHILD_ENV: &str = "GENCORO_NET_MUTANTS_CHILD";

/// How long a child may take at most (well below `.ci/mutants`' 30 s per
/// mutant, so a child that does not end is killed here, not left behind).
const CHILD_LIMIT: Duration = Duration::from_secs(10);

/// A child process, killed when this is dropped (also when the test
/// panics) if it has not ended.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Waits for `child` to end (killing it after `CHILD_LIMIT`); its status
/// and the `child: ` lines it printed, without the prefix.
fn finish(mut child: Child) -> (ExitStatus, Vec<String>) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        // Dropping `child` kills it.
        assert!(started.elapsed() < CHILD_LIMIT, "the child did not end within {CHILD_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child.0.stdout.take().expect("piped stdout").read_to_string(&mut out).expect("stdout");
    let lines = out
        .lines()
        .filter_map(|l| l.find("child: ").map(|at| l[at + "child: ".len()..].to_owned()))
        .collect();
    (status, lines)
}

/// Runs this binary's ignored test `name` alone, as a child process.
fn run_child(name: &str) -> (ExitStatus, Vec<String>) {
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    finish(Child(child))
}

#[test]
#[ignore = "a child process of a_sigint_during_the_shutdown_of_an_armed_run_does_the_default"]
fn child_sigint_during_shutdown() {
    if !is_child("child_sigint_during_shutdown") {
        return;
    }
    let outcome = Builder::new().cancel_on_ctrl_c(true).run(|| {
        runtime::spawn(|| {
            let e = runtime::sleep(Duration::from_secs(3600)).unwrap_err();
            println!("child: cancelled at shutdown");
            signal_hook::low_level::raise(Signal::Interrupt.number()).unwrap();
            // The default action ends the process meanwhile.
            std::thread::sleep(Duration::from_secs(3));
            println!("child: the sigint was swallowed");
            Err::<(), _>(e)
        });
        runtime::sleep(Duration::ZERO)?; // the task waits
        Ok(7)
    });
    println!("child: run returned {outcome:?}");
}

/// `run` disarms its Ctrl-C handling when the main task returns: a SIGINT
/// while the remaining tasks are cancelled at the end of the run, with
/// nobody waiting for it, does the default and ends the process (it is
/// not taken by the run that has disarmed).
#[test]
fn a_sigint_during_the_shutdown_of_an_armed_run_does_the_default() {
    let (status, lines) = run_child("child_sigint_during_shutdown");
    assert_eq!(status.signal(), Some(Signal::Interrupt.number()), "{status}: {lines:?}");
    assert_eq!(lines, ["cancelled at shutdown"]);
}

/// The echo server in serve mode, started by `start` (this test's child);
/// returns the child once it printed its address, and the address.
fn start_echo_server(mut command: Command) -> (Child, String) {
    let mut server = Child(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    let addr = examples::listening_address(&mut server.0);
    (server, addr)
}

/// One echo from the server at `addr`.
fn echo_once(addr: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).expect("the server accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"ping").unwrap();
    let mut back = vec![0; 4];
    s.read_exact(&mut back).expect("the echo comes back");
    back
}

/// Sends SIGINT to `pid` (with `kill`, so no `unsafe` here).
fn interrupt(pid: u32) {
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -INT failed: {status}");
}

/// A program's `run` on its main thread, with SIGINT at its default,
/// cancels its main task on Ctrl-C (`asyncio.run`'s default): the echo
/// server's `run` returns the cancellation and the program exits with
/// status 1 (it is not killed by the signal).
#[test]
fn a_programs_run_on_the_main_thread_is_cancelled_by_sigint_by_default() {
    let (server, addr) = start_echo_server(Command::new(example("echo_server")));
    assert_eq!(echo_once(&addr), b"ping");
    interrupt(server.0.id());
    let (status, _) = finish(server);
    assert_eq!(status.signal(), None, "killed by the signal: {status}");
    assert_eq!(status.code(), Some(1), "{status}");
}

/// A program started with SIGINT ignored (as `nohup` or a shell's `&`
/// may start it) does not cancel its `run` on SIGINT (CPython's condition:
/// the handler must be the default one): the echo server keeps serving.
#[test]
fn a_programs_run_started_with_sigint_ignored_is_not_cancelled_by_sigint() {
    let mut command = Command::new("sh");
    command.args(["-c", "trap '' INT; exec \"$0\""]).arg(example("echo_server"));
    let (mut server, addr) = start_echo_server(command);
    assert_eq!(echo_once(&addr), b"ping");
    interrupt(server.0.id());
    std::thread::sleep(Duration::from_millis(300));
    let still = server.0.try_wait().expect("wait");
    let echo = still.is_none().then(|| echo_once(&addr));
    drop(server); // killed
    assert_eq!(still, None, "the server ended on the ignored SIGINT");
    assert_eq!(echo.as_deref(), Some(&b"ping"[..]));
}

/// Open sockets nobody waits on are not outside work: a loop whose only
/// task waits for an event nobody can set reports the deadlock, even with
/// connected (registered) sockets and after a read on one has completed.
#[test]
fn a_deadlock_beside_open_sockets_nobody_waits_on_is_reported() {
    let kind = bounded(Duration::from_secs(10), || {
        virtual_run(|| {
            let (client, server) = connected()?;
            let c = Rc::new(client);
            let c1 = c.clone();
            let reader = runtime::spawn(move || c1.read(&mut [0; 4]));
            runtime::sleep(Duration::ZERO)?; // it parks
            server.write_all(b"once")?;
            assert_eq!(reader.join()?, 4);
            let never = gencoro::sync::Event::new();
            never.wait()?;
            drop((c, server));
            Ok(())
        })
        .unwrap_err()
        .kind()
    });
    assert_eq!(kind, gencoro::runtime::ErrorKind::Deadlock);
}

/// A SIGTERM is delivered to its waiters only and leaves the SIGINT
/// waiters waiting: the SIGINT that follows goes to them, not to the run's
/// default (which would cancel the main task). Real clock: the signals come
/// from the signal thread.
#[test]
fn a_sigterm_leaves_the_sigint_waiters_waiting_for_the_next_sigint() {
    let outcome = bounded(Duration::from_secs(30), || {
        Builder::new().cancel_on_ctrl_c(true).run(|| {
            let term = runtime::spawn(|| signal::wait(Signal::Terminate));
            let int = runtime::spawn(|| signal::wait(Signal::Interrupt));
            runtime::sleep(Duration::ZERO)?; // both wait
            signal_hook::low_level::raise(Signal::Terminate.number()).unwrap();
            term.join()?;
            assert!(!int.is_done());
            signal_hook::low_level::raise(Signal::Interrupt.number()).unwrap();
            int.join()?;
            Ok("each waiter got its signal")
        })
    });
    assert_eq!(outcome.unwrap(), "each waiter got its signal");
}

/// Reads at the end of the stream return 0 at once, again and again,
/// without suspending the task (no other task runs in between): reading 0
/// does not mark the socket drained.
#[test]
fn reads_at_the_end_of_the_stream_return_at_once_without_suspending() {
    let (ends, other_ran) = bounded(Duration::from_secs(20), || {
        virtual_run(|| {
            let (client, server) = connected()?;
            drop(server); // the end of the stream reaches client at once
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let other = runtime::spawn(move || {
                r.set(true);
                Ok(())
            });
            let mut buf = [0; 8];
            let ends = [client.read(&mut buf)?, client.read(&mut buf)?, client.read(&mut buf)?];
            let other_ran = ran.get();
            other.join()?;
            Ok((ends, other_ran))
        })
        .unwrap()
    });
    assert_eq!(ends, [0, 0, 0]);
    assert!(!other_ran, "a read at the end of the stream suspended the task");
}
