//! A TCP echo server on one thread: every connection is a task of the same
//! loop, so any number of clients are served at once, each waiting on its
//! own socket without blocking the others. Python: `asyncio.start_server`
//! with a handler that writes back what it reads.
//!
//! ```text
//! cargo run --example echo_server [-- --port 7000]
//! cargo run --example echo_server -- --clients 50 [--messages 100] [--size 64] [--virtual]
//! ```
//!
//! Without `--clients` it serves on 127.0.0.1 and `--port` (default 0: any
//! free port), prints `listening on <address>`, and runs until killed
//! (`nc 127.0.0.1 <port>` talks to it).
//!
//! With `--clients N` (load mode) it also connects N clients from the same
//! loop; each sends `--messages` messages of `--size` bytes, one at a time,
//! reads each echo back and checks every byte, then shuts its side down and
//! checks the server closes too. When all are done it prints one line and
//! exits, with status 1 if any client failed:
//!
//! ```text
//! clients=50 messages=100 size=64 bytes=320000 ok
//! ```
//!
//! (`bytes` counts the bytes echoed and checked, summed over the clients.)
//! Loopback traffic needs no time to pass, so load mode also runs on the
//! virtual clock (`--virtual`).

use std::net::{Shutdown, SocketAddr};

use gencoro::net::{TcpListener, TcpStream};
use gencoro::runtime::{self, Builder, Clock, Error};

const USAGE: &str = "echo_server [--port P] [--clients N [--messages M] [--size S]] [--virtual]";

struct Options {
    port: u16,
    clients: Option<usize>,
    messages: usize,
    size: usize,
    virtual_time: bool,
}

fn fail(problem: &str) -> ! {
    eprintln!("{problem}\nusage: {USAGE}");
    std::process::exit(2)
}

impl Options {
    fn parse() -> Options {
        let mut options =
            Options { port: 0, clients: None, messages: 100, size: 64, virtual_time: false };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> usize {
                let v = args.next().unwrap_or_else(|| fail(&format!("{name} needs a value")));
                v.parse().unwrap_or_else(|_| fail(&format!("{name}: not a number: {v:?}")))
            };
            match arg.as_str() {
                "--port" => {
                    options.port = u16::try_from(value("--port"))
                        .unwrap_or_else(|_| fail("--port: not a port number"));
                }
                "--clients" => options.clients = Some(value("--clients")),
                "--messages" => options.messages = value("--messages"),
                "--size" => options.size = value("--size"),
                "--virtual" => options.virtual_time = true,
                _ => fail(&format!("unknown argument {arg:?}")),
            }
        }
        if options.size == 0 {
            fail("--size must be at least 1");
        }
        options
    }
}

/// Writes back whatever comes, until the client shuts its side down.
fn echo(stream: TcpStream) -> Result<(), Error> {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(()),
            n => stream.write_all(&buf[..n])?,
        }
    }
}

/// Accepts forever, a task per connection. A connection's failure (a
/// client that reset, ...) is reported on stderr and ends that connection
/// only.
fn serve(listener: TcpListener) -> Result<(), Error> {
    loop {
        let (stream, peer) = listener.accept()?;
        runtime::spawn(move || {
            if let Err(e) = echo(stream) {
                eprintln!("echo_server: connection from {peer}: {e}");
            }
            Ok(())
        });
    }
}

/// The bytes of message `m` of client `c`: a pattern particular to both,
/// so a byte from the wrong message or the wrong connection is caught.
fn message(c: usize, m: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| (c.wrapping_mul(31) ^ m.wrapping_mul(7) ^ i) as u8).collect()
}

/// One load-mode client: returns the bytes it had echoed and checked.
fn client(addr: SocketAddr, c: usize, messages: usize, size: usize) -> Result<usize, Error> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut back = vec![0; size];
    for m in 0..messages {
        let sent = message(c, m, size);
        stream.write_all(&sent)?;
        stream.read_exact(&mut back)?;
        if back != sent {
            return Err(Error::new(format!("client {c}: message {m} came back changed")));
        }
    }
    stream.shutdown(Shutdown::Write)?;
    // The server closes once it has read our end: nothing more may come.
    if stream.read(&mut back)? != 0 {
        return Err(Error::new(format!("client {c}: bytes after the last echo")));
    }
    Ok(messages * size)
}

fn main() {
    let options = Options::parse();
    let clock = if options.virtual_time { Clock::virtual_time() } else { Clock::real_time() };
    let Options { port, clients, messages, size, .. } = options;
    let result = Builder::new().clock(clock).run(move || {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let addr = listener.local_addr()?;
        let Some(clients) = clients else {
            println!("listening on {addr}");
            return serve(listener);
        };
        let server = runtime::spawn(move || serve(listener));
        let tasks: Vec<_> =
            (0..clients).map(|c| runtime::spawn(move || client(addr, c, messages, size))).collect();
        let bytes: usize = runtime::gather(tasks)?.into_iter().sum();
        server.cancel();
        println!("clients={clients} messages={messages} size={size} bytes={bytes} ok");
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("echo_server failed: {e}");
        std::process::exit(1);
    }
}
