//! The kind of a socket (SO_TYPE, SO_PROTOCOL), which nix reads only in part.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// (type, protocol) of socket `fd`: `SOCK_STREAM`/`SOCK_DGRAM`/`SOCK_RAW`…, `IPPROTO_*`.
pub fn kind(fd: BorrowedFd<'_>) -> io::Result<(i32, i32)> {
    let get = |opt: libc::c_int| -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of an int and a socklen_t, and `len` says
        // how much of `v` the kernel may fill.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw mut v).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    };
    Ok((get(libc::SO_TYPE)?, get(libc::SO_PROTOCOL)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn tells_tcp_from_udp() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            kind(tcp.as_fd()).unwrap(),
            (libc::SOCK_STREAM, libc::IPPROTO_TCP)
        );
        assert_eq!(
            kind(udp.as_fd()).unwrap(),
            (libc::SOCK_DGRAM, libc::IPPROTO_UDP)
        );
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(
            kind(file.as_fd()).unwrap_err().raw_os_error(),
            Some(libc::ENOTSOCK)
        );
    }
}
