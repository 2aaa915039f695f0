//! Reading a stopped task's syscall arguments out of its memory.
//!
//! Read once into a bounded local buffer and decide on that copy only: the task (or another thread
//! of it) can rewrite its memory at any time, so a value read twice may differ. After reading, the
//! caller must check that the notification is still valid: the pid may have been reused between
//! RECV and the read, and then these bytes belong to another process.
//!
//! The reads are process_vm_readv(2): one syscall per read, with no descriptor to open and close
//! per notification (opening /proc/<pid>/mem, reading and closing it cost three, about 2 µs here).
//! The kernel checks the same thing for both: PTRACE_MODE_ATTACH on the task (the agent is root
//! with CAP_SYS_PTRACE), and it looks the task's current address space up on every call, so an
//! exec in between can't make a read come from a stale one.

use std::io::{self, IoSliceMut};

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

/// Linux's PATH_MAX: a longer path fails in the kernel with ENAMETOOLONG anyway.
pub const PATH_MAX: usize = 4096;

/// Most paths are short: the first read of a string asks for this much (or up to the end of its
/// page), and only a longer one takes more reads.
const FIRST_CHUNK: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot open /proc/{pid}/mem: {source}")]
    Open { pid: u32, source: io::Error },
    #[error("cannot read {len} bytes at {addr:#x} of pid {pid}: {source}")]
    Read {
        pid: u32,
        addr: u64,
        len: usize,
        source: io::Error,
    },
    #[error("string at {addr:#x} of pid {pid} is not NUL-terminated within {max} bytes")]
    Unterminated { pid: u32, addr: u64, max: usize },
    #[error("null pointer argument")]
    Null,
}

/// A task's address space. Holds nothing open: each read goes to the task as it is then.
pub struct TaskMemory {
    pid: u32,
}

impl TaskMemory {
    pub fn open(pid: u32) -> Result<Self, MemoryError> {
        Ok(Self { pid })
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL). Never reads across
    /// a page boundary in one call, so a string that ends just before an unmapped page is still
    /// read.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, MemoryError> {
        if addr == 0 {
            return Err(MemoryError::Null);
        }
        let mut out = Vec::with_capacity(FIRST_CHUNK);
        let mut at = addr;
        let mut chunk = [0u8; 4096];
        while out.len() < max + 1 {
            let page_left = 4096 - (at % 4096) as usize;
            let cap = if out.is_empty() { FIRST_CHUNK } else { 4096 };
            let want = page_left.min(cap).min(max + 1 - out.len());
            let n = self.read_into(at, &mut chunk[..want])?;
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            if n < want {
                // A short read means the next byte is unmapped: no terminator reachable.
                break;
            }
            at += n as u64;
        }
        Err(MemoryError::Unterminated {
            pid: self.pid,
            addr,
            max,
        })
    }

    /// Reads exactly `len` bytes (a struct argument such as open_how or a sockaddr).
    pub fn read_exact(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemoryError> {
        if addr == 0 {
            return Err(MemoryError::Null);
        }
        let mut out = vec![0u8; len];
        let n = self.read_into(addr, &mut out)?;
        if n != len {
            return Err(MemoryError::Read {
                pid: self.pid,
                addr,
                len,
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            });
        }
        Ok(out)
    }

    /// Reads up to `buf.len()` bytes at `addr`; fewer when the range runs into unmapped memory.
    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemoryError> {
        let mut done = 0;
        while done < buf.len() {
            let remote = [RemoteIoVec {
                base: (addr + done as u64) as usize,
                len: buf.len() - done,
            }];
            let mut local = [IoSliceMut::new(&mut buf[done..])];
            match process_vm_readv(Pid::from_raw(self.pid as i32), &mut local, &remote) {
                Ok(0) => break,
                Ok(n) => done += n,
                // EFAULT at an unmapped address ends the readable range.
                Err(nix::errno::Errno::EFAULT) if done > 0 => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(MemoryError::Read {
                        pid: self.pid,
                        addr,
                        len: buf.len(),
                        source: e.into(),
                    });
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_string_from_our_own_memory() {
        let s = c"/etc/passwd";
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let got = mem.read_cstr(s.as_ptr() as u64, PATH_MAX).unwrap();
        assert_eq!(got, b"/etc/passwd");
    }

    #[test]
    fn refuses_an_unterminated_string() {
        let buf = [b'a'; 64];
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let err = mem.read_cstr(buf.as_ptr() as u64, 16).unwrap_err();
        assert!(
            matches!(err, MemoryError::Unterminated { max: 16, .. }),
            "{err}"
        );
    }

    #[test]
    fn null_and_unmapped_pointers_are_errors_not_panics() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        assert!(matches!(mem.read_cstr(0, PATH_MAX), Err(MemoryError::Null)));
        assert!(mem.read_cstr(8, PATH_MAX).is_err());
    }

    #[test]
    fn a_string_ending_at_a_page_boundary_is_read() {
        // Put "abc\0" at the very end of a page whose successor is unmapped.
        let page = crate::sys::testing::page_before_a_hole();
        let end = page.as_ptr() as usize + page.len();
        let len = page.len();
        page[len - 4..].copy_from_slice(b"abc\0");
        let mem = TaskMemory::open(std::process::id()).unwrap();
        assert_eq!(mem.read_cstr((end - 4) as u64, PATH_MAX).unwrap(), b"abc");
    }
}
