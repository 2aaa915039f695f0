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

/// What this thread is when it stands in for nobody: read once per thread, since only `assume`
/// and its guard change a thread's credentials and the guard puts back exactly this (or poisons
/// the thread). Saves a capget, a getgroups and glibc's sysconf(_SC_NGROUPS_MAX) (an open and
/// read of /proc/sys/kernel/ngroups_max) per notification.
#[derive(Debug, Clone)]
struct Own {
    caps: [CapData; 2],
    groups: Vec<u32>,
    fsuid: u32,
    fsgid: u32,
}

thread_local! {
    static POISONED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static OWN: std::cell::RefCell<Option<Own>> = const { std::cell::RefCell::new(None) };
}

/// Whether this thread failed to restore its own credentials and must stop serving.
pub fn thread_poisoned() -> bool {
    POISONED.with(|p| p.get())
}

fn poison() {
    POISONED.with(|p| p.set(true));
}

/// The calling thread's current fsuid and fsgid (an invalid id changes nothing and returns the
/// current one).
fn current_fsids() -> (u32, u32) {
    // SAFETY: plain integer arguments; -1 is never a valid id, so nothing changes.
    unsafe {
        (
            libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32,
            libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32,
        )
    }
}

fn raw_getgroups() -> io::Result<Vec<u32>> {
    // SAFETY: size 0 only asks for the count.
    let n = unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<u32>()) };
    check(n)?;
    let mut groups = vec![0u32; n as usize];
    // SAFETY: the buffer holds `n` entries, and its length is passed.
    let got = unsafe { libc::syscall(libc::SYS_getgroups, groups.len(), groups.as_mut_ptr()) };
    check(got)?;
    groups.truncate(got as usize);
    Ok(groups)
}

fn setgroups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the list outlives the call and its length is passed.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })
}

/// Sets the fsuid/fsgid and checks it took: setfsuid/setfsgid return the previous id and cannot
/// report errors themselves.
fn set_fsids(fsuid: u32, fsgid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    unsafe {
        libc::syscall(libc::SYS_setfsgid, fsgid);
        libc::syscall(libc::SYS_setfsuid, fsuid);
    }
    let (now_uid, now_gid) = current_fsids();
    if now_uid != fsuid || now_gid != fsgid {
        return Err(io::Error::other(format!(
            "setfsuid/setfsgid to {fsuid}:{fsgid} did not take (now {now_uid}:{now_gid})"
        )));
    }
    Ok(())
}

fn read_own() -> io::Result<Own> {
    let (fsuid, fsgid) = current_fsids();
    Ok(Own {
        caps: capget()?,
        groups: raw_getgroups()?,
        fsuid,
        fsgid,
    })
}

/// The groups a permission check sees: the kernel's in_group_p() asks whether a group is the
/// fsgid or one of the supplementary groups, so only their union matters, not the list itself
/// (runc gives a container's root the supplementary group 0, which its fsgid 0 already is).
fn group_set(groups: &[u32], fsgid: u32) -> Vec<u32> {
    let mut set = Vec::with_capacity(groups.len() + 1);
    set.extend_from_slice(groups);
    set.push(fsgid);
    set.sort_unstable();
    set.dedup();
    set
}

/// Restores the thread's own credentials when dropped: only what `assume` changed. Must be dropped
/// on the thread that assumed (it is not `Send`).
#[derive(Debug)]
pub struct Assumed {
    own_caps: [CapData; 2],
    own_fsids: (u32, u32),
    groups: bool,
    fsids: bool,
    caps: bool,
    _thread: std::marker::PhantomData<*const ()>,
}

/// Takes on `creds` for this thread until the guard drops. The effective capabilities become
/// the task's, limited to what the agent holds. Only what differs from the thread's own
/// credentials is changed (each change is a new kernel `cred`, about 1 µs here); when the task's
/// filesystem identity is the agent's own, nothing is, and the kernel's checks are the same ones.
pub fn assume(creds: &FsCreds) -> io::Result<Assumed> {
    let (own_caps, own_fsids, groups_differ) = OWN.with(|o| -> io::Result<_> {
        let mut o = o.borrow_mut();
        if o.is_none() {
            *o = Some(read_own()?);
        }
        let own = o.as_ref().expect("set above");
        let groups_differ =
            group_set(&own.groups, creds.fsgid) != group_set(&creds.groups, creds.fsgid);
        Ok((own.caps, (own.fsuid, own.fsgid), groups_differ))
    })?;
    let mut caps = own_caps;
    caps[0].effective = (creds.cap_effective as u32) & own_caps[0].permitted;
    caps[1].effective = ((creds.cap_effective >> 32) as u32) & own_caps[1].permitted;
    let mut guard = Assumed {
        own_caps,
        own_fsids,
        groups: false,
        fsids: false,
        caps: false,
        _thread: std::marker::PhantomData,
    };
    // Groups and ids first, while the thread still has CAP_SETGID/CAP_SETUID; capabilities last.
    // Each flag is set before its change, so on an error the guard's drop undoes it too.
    if groups_differ {
        guard.groups = true;
        setgroups(&creds.groups)?;
    }
    if (creds.fsuid, creds.fsgid) != own_fsids {
        guard.fsids = true;
        set_fsids(creds.fsuid, creds.fsgid)?;
    }
    // A new fsuid other than 0 also clears the filesystem capabilities from the effective set
    // (capabilities(7)): set them again, or a task with CAP_DAC_OVERRIDE and a uid of its own
    // would get less in an emulated open than the kernel gives it.
    let fs_caps_cleared = guard.fsids && creds.fsuid != 0;
    if fs_caps_cleared
        || caps[0].effective != own_caps[0].effective
        || caps[1].effective != own_caps[1].effective
    {
        guard.caps = true;
        capset(&caps)?;
    }
    Ok(guard)
}

impl Drop for Assumed {
    fn drop(&mut self) {
        // Capabilities first: putting the groups and ids back needs CAP_SETGID/CAP_SETUID, which
        // the task's set may lack. A thread that can't get its own credentials back must not
        // serve another notification with the wrong ones: it is marked poisoned, and the
        // supervisor stops it.
        if self.caps && capset(&self.own_caps).is_err() {
            poison();
        }
        if self.fsids && set_fsids(self.own_fsids.0, self.own_fsids.1).is_err() {
            poison();
        }
        if self.groups {
            let restored = OWN.with(|o| match o.borrow().as_ref() {
                Some(own) => setgroups(&own.groups),
                None => Err(io::Error::other("no saved groups")),
            });
            if restored.is_err() {
                poison();
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fsids() -> (u32, u32) {
        current_fsids()
    }

    #[test]
    fn only_what_differs_is_changed_and_all_of_it_is_restored() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // A thread of its own: credentials are per thread.
        std::thread::spawn(|| {
            let own_groups = raw_getgroups().unwrap();
            let own_caps = capget().unwrap();
            let own_ids = fsids();
            let same = FsCreds {
                fsuid: own_ids.0,
                fsgid: own_ids.1,
                groups: own_groups.clone(),
                cap_effective: u64::from(own_caps[0].effective)
                    | (u64::from(own_caps[1].effective) << 32),
            };
            let g = assume(&same).unwrap();
            assert!(!g.groups && !g.fsids && !g.caps, "{g:?}");
            drop(g);
            // The fsgid listed again as a supplementary group changes no check either.
            let mut with_fsgid = same.clone();
            with_fsgid.groups.push(own_ids.1);
            let g = assume(&with_fsgid).unwrap();
            assert!(!g.groups, "{g:?}");
            drop(g);

            let other = FsCreds {
                fsuid: 65534,
                fsgid: 65534,
                groups: vec![65534, 100],
                cap_effective: 0,
            };
            // Another uid with the agent's own capabilities keeps them all, though setfsuid
            // drops the filesystem ones (CAP_DAC_OVERRIDE is bit 1).
            let all = FsCreds {
                cap_effective: same.cap_effective,
                ..other.clone()
            };
            let g = assume(&all).unwrap();
            assert_eq!(fsids(), (65534, 65534));
            let got = capget().unwrap()[0].effective;
            assert_eq!(got, own_caps[0].effective, "{g:?}");
            assert_ne!(got & (1 << 1), 0, "CAP_DAC_OVERRIDE kept");
            drop(g);
            assert_eq!(capget().unwrap()[0].effective, own_caps[0].effective);

            let g = assume(&other).unwrap();
            assert_eq!(fsids(), (65534, 65534));
            assert_eq!(raw_getgroups().unwrap(), vec![100, 65534]);
            assert_eq!(capget().unwrap()[0].effective, 0);
            drop(g);
            assert_eq!(fsids(), own_ids);
            assert_eq!(raw_getgroups().unwrap(), own_groups);
            assert_eq!(capget().unwrap()[0].effective, own_caps[0].effective);
            assert!(!thread_poisoned());
        })
        .join()
        .unwrap();
    }
}
