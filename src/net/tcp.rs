//! `TcpListener` and `TcpStream` on the loop.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};

use super::driver::Direction;
use super::socket::Socket;
use crate::runtime::Error;

/// A TCP socket listening for connections; [`accept`](Self::accept) waits
/// for one without blocking the loop. Python: `asyncio.start_server`'s
/// listening socket, `loop.sock_accept`.
///
/// Dropping it closes the socket and deregisters it from the loop.
///
/// ```
/// use gencoro::net::TcpListener;
/// use gencoro::runtime::{Builder, Clock};
///
/// Builder::new().clock(Clock::virtual_time()).run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     assert_ne!(listener.local_addr()?.port(), 0);
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpListener {
    sock: Socket<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds a listening socket to `addr` (port 0: any free port), with
    /// `SO_REUSEADDR` set. It needs no running loop: the socket joins the
    /// loop of the first task that waits on it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io): the address is in
    /// use, not available, ...
    ///
    /// ```
    /// use gencoro::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let taken = listener.local_addr().unwrap();
    /// let e = TcpListener::bind(taken).unwrap_err();
    /// assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
    /// ```
    pub fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
        Ok(TcpListener { sock: Socket::new(mio::net::TcpListener::bind(addr)?) })
    }

    /// Makes a listener of a bound `std` one (set non-blocking here).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) if it cannot be
    /// set non-blocking.
    ///
    /// ```
    /// use gencoro::net::TcpListener;
    ///
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let listener = TcpListener::from_std(std_listener).unwrap();
    /// assert!(listener.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> Result<TcpListener, Error> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { sock: Socket::new(mio::net::TcpListener::from_std(listener)) })
    }

    /// Waits for a connection and returns it with the peer's address.
    /// Python: `loop.sock_accept`.
    ///
    /// Cancelled while it waits, it accepts nothing: a connection that
    /// arrives meanwhile waits in the backlog for the next `accept`.
    ///
    /// # Errors
    ///
    /// The cancellation of the wait; [`ErrorKind::Io`](crate::runtime::ErrorKind::Io)
    /// if accepting failed (out of file descriptors, ...);
    /// [`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind::NoRunningLoop)
    /// if it has to wait outside a task.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{self, Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let client = runtime::spawn(move || TcpStream::connect(addr));
    ///     let (_stream, peer) = listener.accept()?;
    ///     assert_eq!(peer, client.join()?.local_addr()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn accept(&self) -> Result<(TcpStream, SocketAddr), Error> {
        let (stream, peer) =
            self.sock.io(Direction::Read, "TcpListener.accept", |l| l.accept(), |_| false)?;
        Ok((TcpStream { sock: Socket::new(stream) }, peer))
    }

    /// The address the listener is bound to (with the port chosen for
    /// port 0).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) from the system.
    ///
    /// ```
    /// use gencoro::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert!(listener.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.sock.get().local_addr()?)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("socket", &self.sock).finish()
    }
}

/// A TCP connection; each call that would block waits for the socket
/// without blocking the loop. Python: an `asyncio` stream pair
/// (`StreamReader`/`StreamWriter`) over one socket, or `loop.sock_recv`
/// and `loop.sock_sendall`.
///
/// Every method takes `&self`, and `&TcpStream` implements
/// [`std::io::Read`] and [`std::io::Write`], so existing parsers work on
/// it; the `std` methods suspend the task like the inherent ones. Dropping
/// the stream closes the socket and deregisters it from the loop.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use gencoro::net::{TcpListener, TcpStream};
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let line = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let addr = listener.local_addr()?;
///     runtime::spawn(move || {
///         let (mut stream, _) = listener.accept()?;
///         Write::write_all(&mut stream, b"hello\nworld\n")?; // std::io::Write
///         Ok(())
///     });
///     let mut line = String::new();
///     BufReader::new(TcpStream::connect(addr)?).read_line(&mut line)?;
///     Ok(line)
/// });
/// assert_eq!(line.unwrap(), "hello\n");
/// ```
pub struct TcpStream {
    sock: Socket<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`: a non-blocking connect, then a wait until the
    /// socket is writable, then a check of its pending error. Python:
    /// `loop.sock_connect`. For a host name, see
    /// [`connect_host`](Self::connect_host).
    ///
    /// Cancelled while it waits, the half-open socket is closed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) with the kind of
    /// the failure ([`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused),
    /// ...); the cancellation of the wait;
    /// [`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind::NoRunningLoop)
    /// outside a task.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// let kind = Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     // A port nobody listens on: bound, then closed.
    ///     let addr = TcpListener::bind("127.0.0.1:0".parse().unwrap())?.local_addr()?;
    ///     Ok(TcpStream::connect(addr).unwrap_err().io_kind())
    /// });
    /// assert_eq!(kind.unwrap(), Some(std::io::ErrorKind::ConnectionRefused));
    /// ```
    pub fn connect(addr: SocketAddr) -> Result<TcpStream, Error> {
        // Refuse outside a task before any socket exists.
        crate::runtime::io_driver()?;
        let stream = TcpStream { sock: Socket::new(mio::net::TcpStream::connect(addr)?) };
        // Connected, or failed, once writable. The task always waits once,
        // even for a loopback connect that the kernel finished inside the
        // call (Python's `sock_connect` gets `EINPROGRESS` and waits too):
        // a loop of connects then lets the accepting task run, instead of
        // filling the listen backlog.
        loop {
            stream.sock.wait(Direction::Write, "TcpStream.connect")?;
            if stream.connected()? {
                return Ok(stream);
            }
        }
    }

    /// Connects to `host:port` (a name such as `"localhost:8080"`, or an
    /// address such as `"127.0.0.1:8080"` or `"[::1]:8080"`): resolves the
    /// name without blocking the loop, then tries each address it resolved
    /// to in turn, as [`connect`](Self::connect) does, until one connects.
    /// Python: `asyncio.open_connection(host, port)` (`getaddrinfo` in the
    /// executor, then `sock_connect` to each address).
    ///
    /// An address needs no resolution and is connected to at once. A name
    /// is resolved by [`std::net::ToSocketAddrs`], which may block (it asks
    /// the system resolver: `/etc/hosts`, DNS), so it runs on the loop's
    /// pool through [`offload`](crate::runtime::offload); on the virtual
    /// clock no virtual time passes meanwhile.
    ///
    /// Cancelled while it resolves, the lookup still runs to its end on its
    /// pool thread and its result is dropped; cancelled while it connects,
    /// the half-open socket is closed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io): the name did not
    /// resolve, or resolved to no address
    /// ([`InvalidInput`](std::io::ErrorKind::InvalidInput)), or the error
    /// of the last address tried if none connected
    /// ([`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused), ...);
    /// the cancellation of a wait;
    /// [`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind::NoRunningLoop)
    /// outside a task.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{self, Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let port = listener.local_addr()?.port();
    ///     let server = runtime::spawn(move || Ok(listener.accept()?.1));
    ///     let client = TcpStream::connect_host(&format!("localhost:{port}"))?;
    ///     assert_eq!(server.join()?, client.local_addr()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn connect_host(host: &str) -> Result<TcpStream, Error> {
        // Refuse outside a task before anything is resolved.
        crate::runtime::io_driver()?;
        let addrs: Vec<SocketAddr> = match host.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) => {
                let name = host.to_owned();
                crate::runtime::offload(move || {
                    name.to_socket_addrs().map(Iterator::collect::<Vec<_>>)
                })??
            }
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr) {
                Ok(stream) => return Ok(stream),
                // Only I/O failures move on to the next address; a
                // cancellation or a refused wait ends the call.
                Err(e) if e.io_kind().is_some() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} resolved to no address"))
                .into()
        }))
    }

    /// Whether a connect in progress has ended, connected; its failure if
    /// it failed.
    fn connected(&self) -> Result<bool, Error> {
        let s = self.sock.get();
        if let Some(e) = s.take_error()? {
            return Err(e.into());
        }
        match s.peer_addr() {
            Ok(_) => Ok(true),
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a stream of a connected `std` one (set non-blocking here).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) if it cannot be
    /// set non-blocking.
    ///
    /// ```
    /// use gencoro::net::TcpStream;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let stream = TcpStream::from_std(std_stream).unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> Result<TcpStream, Error> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream { sock: Socket::new(mio::net::TcpStream::from_std(stream)) })
    }

    /// Reads what is there, up to `buf.len()` bytes, waiting until
    /// something is; 0 means the peer closed its side (or `buf` is empty).
    /// Python: `StreamReader.read(n)`.
    ///
    /// Cancel-safe: cancelled while it waits, it has read nothing, and the
    /// next read returns what came meanwhile.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) (connection reset,
    /// ...); the cancellation of the wait.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{self, Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     runtime::spawn(move || listener.accept()?.0.write_all(b"hi"));
    ///     let stream = TcpStream::connect(addr)?;
    ///     let mut buf = [0; 16];
    ///     let mut got = Vec::new();
    ///     loop {
    ///         let n = stream.read(&mut buf)?;
    ///         if n == 0 {
    ///             break; // the server's stream was dropped
    ///         }
    ///         got.extend_from_slice(&buf[..n]);
    ///     }
    ///     assert_eq!(got, b"hi");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = buf.len();
        if len == 0 {
            // Linux says `EAGAIN` to an empty receive on an empty socket:
            // reading nothing never waits (Python: `read(0)` is `b''`).
            return Ok(0);
        }
        // A short read emptied the socket's buffer (edge-triggered: more
        // data brings an event).
        self.sock.io(Direction::Read, "TcpStream.read", |mut s| s.read(buf), |&n| 0 < n && n < len)
    }

    /// Reads exactly `buf.len()` bytes. Python: `StreamReader.readexactly`.
    ///
    /// Cancelled part-way, the bytes read so far are consumed (and lost
    /// with `buf`'s contents); use [`read`](Self::read) where that
    /// matters.
    ///
    /// # Errors
    ///
    /// [`UnexpectedEof`](std::io::ErrorKind::UnexpectedEof) (as an
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) error) if the peer
    /// closes first; other I/O errors; the cancellation of a wait.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{self, Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     runtime::spawn(move || listener.accept()?.0.write_all(b"abc"));
    ///     let stream = TcpStream::connect(addr)?;
    ///     let mut two = [0; 2];
    ///     stream.read_exact(&mut two)?;
    ///     assert_eq!(&two, b"ab");
    ///     let e = stream.read_exact(&mut two).unwrap_err(); // one byte left
    ///     assert_eq!(e.io_kind(), Some(std::io::ErrorKind::UnexpectedEof));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn read_exact(&self, mut buf: &mut [u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection before the buffer was filled",
                    )
                    .into());
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes some of `buf`, waiting until the socket takes at least one
    /// byte; returns how many it took (0 only for an empty `buf`).
    ///
    /// Cancel-safe: cancelled while it waits, it has written nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) (broken pipe,
    /// connection reset, ...); the cancellation of the wait.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let stream = TcpStream::connect(listener.local_addr()?)?;
    ///     assert_eq!(stream.write(b"ping")?, 4);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn write(&self, buf: &[u8]) -> Result<usize, Error> {
        let len = buf.len();
        // A short write filled the socket's send buffer.
        self.sock.io(
            Direction::Write,
            "TcpStream.write",
            |mut s| s.write(buf),
            |&n| 0 < n && n < len,
        )
    }

    /// Writes all of `buf`, waiting as often as the socket needs. Python:
    /// `writer.write(data); await writer.drain()`.
    ///
    /// Cancelled part-way, a prefix of `buf` was sent and the rest not;
    /// use [`write`](Self::write) to know how much.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write), and
    /// [`WriteZero`](std::io::ErrorKind::WriteZero) if the socket took
    /// nothing.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{self, Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let reader = runtime::spawn(move || {
    ///         let (stream, _) = listener.accept()?;
    ///         let mut all = vec![0; 1 << 20];
    ///         stream.read_exact(&mut all)?;
    ///         Ok(all.iter().all(|&b| b == 7))
    ///     });
    ///     // More than the socket buffers hold: it waits for the reader.
    ///     TcpStream::connect(addr)?.write_all(&vec![7; 1 << 20])?;
    ///     assert!(reader.join()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn write_all(&self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            match self.write(buf)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket took no byte of the buffer",
                    )
                    .into());
                }
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shuts down the reading side, the writing side or both; the peer
    /// reads 0 once its side is shut for writing. It does not wait.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io)
    /// ([`NotConnected`](std::io::ErrorKind::NotConnected), ...).
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     let (server, _) = listener.accept()?;
    ///     client.shutdown(Shutdown::Write)?;
    ///     assert_eq!(server.read(&mut [0; 4])?, 0);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        Ok(self.sock.get().shutdown(how)?)
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io)
    /// ([`NotConnected`](std::io::ErrorKind::NotConnected), ...).
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     assert_eq!(client.peer_addr()?, listener.local_addr()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.sock.get().peer_addr()?)
    }

    /// The local address of the connection.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) from the system.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     let (server, _) = listener.accept()?;
    ///     assert_eq!(client.local_addr()?, server.peer_addr()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.sock.get().local_addr()?)
    }

    /// Sets `TCP_NODELAY`: small writes go out at once instead of waiting
    /// to be merged (Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) from the system.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     client.set_nodelay(true)?;
    ///     assert!(client.nodelay()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> Result<(), Error> {
        Ok(self.sock.get().set_nodelay(nodelay)?)
    }

    /// Whether `TCP_NODELAY` is set (see [`set_nodelay`](Self::set_nodelay)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::runtime::ErrorKind::Io) from the system.
    ///
    /// ```
    /// use gencoro::net::{TcpListener, TcpStream};
    /// use gencoro::runtime::{Builder, Clock};
    ///
    /// Builder::new().clock(Clock::virtual_time()).run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     assert!(!client.nodelay()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn nodelay(&self) -> Result<bool, Error> {
        Ok(self.sock.get().nodelay()?)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream").field("socket", &self.sock).finish()
    }
}

/// [`TcpStream::read`] for `std::io` callers: it suspends the task until
/// data (or the end) is there. Errors are `std::io::Error`s; a
/// cancellation is one of kind `Other` holding the runtime's
/// [`Error`], which `?` into a runtime `Error` gives
/// back unchanged.
impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(TcpStream::read(self, buf)?)
    }
}

/// As for `&TcpStream`.
impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(TcpStream::read(self, buf)?)
    }
}

/// [`TcpStream::write`] for `std::io` callers, suspending the task until
/// the socket takes something; `flush` has nothing to do (no buffer here).
/// Errors as for `Read`.
impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(TcpStream::write(self, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// As for `&TcpStream`.
impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(TcpStream::write(self, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{self, Builder, Clock};

    fn virtual_run<T: 'static>(
        main: impl FnOnce() -> Result<T, Error> + 'static,
    ) -> Result<T, Error> {
        Builder::new().clock(Clock::virtual_time()).run(main)
    }

    #[test]
    fn connect_host_resolves_localhost_and_reaches_a_local_listener() {
        let (accepted_from, connected_from, peer) = virtual_run(|| {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
            let port = listener.local_addr()?.port();
            let server = runtime::spawn(move || {
                let (stream, from) = listener.accept()?;
                stream.write_all(b"pong")?;
                Ok(from)
            });
            // "localhost" may resolve to ::1 first, where nobody listens:
            // the next address is tried.
            let client = TcpStream::connect_host(&format!("localhost:{port}"))?;
            let mut reply = [0; 4];
            client.read_exact(&mut reply)?;
            assert_eq!(&reply, b"pong");
            Ok((server.join()?, client.local_addr()?, client.peer_addr()?))
        })
        .unwrap();
        assert_eq!(accepted_from, connected_from);
        assert!(peer.ip().is_loopback());
    }

    #[test]
    fn connect_host_takes_a_literal_address_too() {
        let peer = virtual_run(|| {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
            let addr = listener.local_addr()?;
            let client = TcpStream::connect_host(&addr.to_string())?;
            Ok((client.peer_addr()?, addr))
        })
        .unwrap();
        assert_eq!(peer.0, peer.1);
    }

    #[test]
    fn connect_host_reports_the_last_refusal_when_no_address_connects() {
        let kind = virtual_run(|| {
            let closed = TcpListener::bind("127.0.0.1:0".parse().unwrap())?.local_addr()?.port();
            Ok(TcpStream::connect_host(&format!("localhost:{closed}")).unwrap_err().io_kind())
        })
        .unwrap();
        assert_eq!(kind, Some(io::ErrorKind::ConnectionRefused));
    }

    #[test]
    fn connect_host_without_a_port_is_invalid_input() {
        let kind = virtual_run(|| Ok(TcpStream::connect_host("localhost").unwrap_err().io_kind()))
            .unwrap();
        assert_eq!(kind, Some(io::ErrorKind::InvalidInput));
    }

    #[test]
    fn connect_host_outside_a_task_is_refused_before_resolving() {
        let e = TcpStream::connect_host("localhost:1").unwrap_err();
        assert_eq!(e.kind(), crate::runtime::ErrorKind::NoRunningLoop);
    }
}
