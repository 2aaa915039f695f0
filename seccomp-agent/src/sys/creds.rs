//! Per-thread credentials, so an emulated open runs with the permissions of the task it stands in
//! for. Linux keeps credentials per thread; glibc's setgroups() would change every thread of the
//! agent, so the raw syscalls are used and only the calling (supervisor) thread is affected.

use std::io;

/// The filesystem identity of a task: what open(2) checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsCreds {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Effective capability set (CapEff), 64 bits.
    pub cap_effective: u64,
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn capget() -> io::Result<[CapData; 2]> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) requires for version 3.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    Ok(data)
}

fn capset(data: &[CapData; 2]) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // SAFETY: as capget; pid 0 is the calling thread.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) })
}

thread_local! {
    static POISONED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread failed to restore its own credentials and must stop serving.
pub fn thread_poisoned() -> bool {
    POISONED.with(|p| p.get())
}

/// Restores the thread's own credentials when dropped.
#[derive(Debug)]
pub struct Assumed {
    saved_caps: [CapData; 2],
    saved_groups: Vec<u32>,
}

/// Takes on `creds` for this thread until the guard drops. The effective capabilities become
/// the task's, limited to what the agent holds.
pub fn assume(creds: &FsCreds) -> io::Result<Assumed> {
    let saved_caps = capget()?;
    let saved_groups = nix::unistd::getgroups()
        .map_err(io::Error::from)?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    let guard = Assumed {
        saved_caps,
        saved_groups,
    };
    // SAFETY: the list outlives the call and its length is passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_setgroups,
            creds.groups.len(),
            creds.groups.as_ptr(),
        )
    })?;
    // setfsuid/setfsgid return the previous id and cannot report errors; verified below.
    // SAFETY: plain integer arguments.
    unsafe {
        libc::syscall(libc::SYS_setfsgid, creds.fsgid);
        libc::syscall(libc::SYS_setfsuid, creds.fsuid);
    }
    // Calling with an invalid id (-1) returns the current one without changing it.
    // SAFETY: as above.
    let (now_uid, now_gid) = unsafe {
        (
            libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32,
            libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32,
        )
    };
    if now_uid != creds.fsuid || now_gid != creds.fsgid {
        return Err(io::Error::other(format!(
            "setfsuid/setfsgid to {}:{} did not take (now {now_uid}:{now_gid})",
            creds.fsuid, creds.fsgid
        )));
    }
    let mut caps = saved_caps;
    caps[0].effective = (creds.cap_effective as u32) & caps[0].permitted;
    caps[1].effective = ((creds.cap_effective >> 32) as u32) & caps[1].permitted;
    capset(&caps)?;
    Ok(guard)
}

impl Drop for Assumed {
    fn drop(&mut self) {
        // SAFETY: plain integer arguments; the list outlives the call.
        unsafe {
            libc::syscall(libc::SYS_setfsuid, 0u32);
            libc::syscall(libc::SYS_setfsgid, 0u32);
            libc::syscall(
                libc::SYS_setgroups,
                self.saved_groups.len(),
                self.saved_groups.as_ptr(),
            );
        }
        // A thread that can't get its capabilities back must not serve another notification
        // with the wrong ones: it is marked poisoned, and the supervisor stops it.
        if capset(&self.saved_caps).is_err() {
            POISONED.with(|p| p.set(true));
        }
    }
}

/// Gives this thread its own umask and cwd (unshare CLONE_FS) and sets the umask to 0, so emulated
/// opens apply the task's umask themselves and other threads are unaffected.
pub fn private_fs_context() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).map_err(io::Error::from)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    Ok(())
}
