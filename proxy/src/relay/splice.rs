//! Zero-copy downloads on Linux: while a session streams, the mail server's bytes go through a
//! kernel pipe to the page's socket with splice(2), and are never copied into the relay.
//!
//! Copying costs over half of the relay's CPU in a download (perf: `_copy_to_iter` reading the
//! server, `_copy_from_iter` writing the page). With splice the kernel moves page references
//! instead. Frame headers are still written by the relay, each sent with `MSG_MORE` so it
//! leaves in the same segment as its payload.
//!
//! A pipe costs two file descriptors and up to [`READ_SIZE`](super::READ_SIZE) of kernel memory,
//! so sessions hold one only while data streams; other platforms (and a pipe the kernel will not
//! make large enough) use the copying path.

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd as _, OwnedFd};

    use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
    use nix::sys::socket::{send, MsgFlags};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// A kernel pipe between the server's socket and the page's.
    #[derive(Debug)]
    pub(crate) struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Pipe {
        /// An empty pipe that holds at least `capacity` bytes.
        pub(crate) fn new(capacity: usize) -> io::Result<Self> {
            let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
            let asked = i32::try_from(capacity).map_err(io::Error::other)?;
            let got = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(asked))?;
            if usize::try_from(got).unwrap_or(0) < capacity {
                return Err(io::Error::other("the kernel made the pipe too small"));
            }
            Ok(Self { read, write })
        }

        /// Moves up to `max` bytes that `from` has received into the (empty) pipe. `Ok(0)` is
        /// the end of the stream; `WouldBlock` means nothing is there yet.
        pub(crate) fn try_fill(&self, from: &TcpStream, max: usize) -> io::Result<usize> {
            from.try_io(Interest::READABLE, || {
                splice(
                    from,
                    None,
                    &self.write,
                    None,
                    max,
                    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                )
                .map_err(io::Error::from)
            })
        }

        /// Moves exactly `len` bytes from the pipe to `to`. `more`: another frame follows at
        /// once, so the kernel may hold back a partial segment.
        pub(crate) async fn drain_to(
            &self,
            to: &TcpStream,
            mut len: usize,
            more: bool,
        ) -> io::Result<()> {
            let mut flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
            if more {
                flags |= SpliceFFlags::SPLICE_F_MORE;
            }
            while len > 0 {
                to.writable().await?;
                let moved = to.try_io(Interest::WRITABLE, || {
                    splice(&self.read, None, to, None, len, flags).map_err(io::Error::from)
                });
                match moved {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => len -= n.min(len),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    /// Writes all of `bytes` (a frame header) to `to`, telling the kernel its payload follows.
    pub(crate) async fn send_more(to: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            to.writable().await?;
            let sent = to.try_io(Interest::WRITABLE, || {
                send(
                    to.as_raw_fd(),
                    bytes,
                    // nix 0.29 has no name for MSG_MORE.
                    MsgFlags::from_bits_retain(nix::libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL,
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n.min(bytes.len())..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{send_more, Pipe};

/// Elsewhere there is no pipe: [`Pipe::new`] fails and sessions copy.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) struct Pipe(std::convert::Infallible);

#[cfg(not(target_os = "linux"))]
use {std::io, tokio::net::TcpStream};

#[cfg(not(target_os = "linux"))]
impl Pipe {
    pub(crate) fn new(_capacity: usize) -> io::Result<Self> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn try_fill(&self, _from: &TcpStream, _max: usize) -> io::Result<usize> {
        match self.0 {}
    }

    pub(crate) async fn drain_to(
        &self,
        _to: &TcpStream,
        _len: usize,
        _more: bool,
    ) -> io::Result<()> {
        match self.0 {}
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) async fn send_more(_to: &TcpStream, _bytes: &[u8]) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}
