//! The processes of watched containers, as the process sensor's events tell them: who started
//! whom, and what each one runs. It answers "which processes started this one" for an alert,
//! including ancestors that have exited since (the table keeps a bounded number of those).

use std::collections::{HashMap, VecDeque};

/// How many ancestors an alert names at most.
pub const MAX_ANCESTORS: usize = 8;
/// Processes the table keeps, alive or exited, before it forgets the oldest exited ones.
const MAX_PROCESSES: usize = 65_536;
/// Exited processes kept as possible ancestors.
const MAX_EXITED: usize = 4_096;
/// Arguments kept per process, and bytes per argument.
const MAX_ARGS: usize = 8;
const MAX_ARG_BYTES: usize = 128;

/// One process of an alert's ancestry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    /// As the host sees it.
    pub pid: u32,
    pub executable: String,
    /// The command line, bounded.
    pub args: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    ppid: u32,
    executable: String,
    args: Vec<String>,
    /// Bumped for each new process at this pid: an exited entry is forgotten only if it is
    /// still the one that exited.
    generation: u64,
    exited: bool,
}

/// What a process looks like from /proc, when the table does not know it.
pub trait Procfs {
    fn parent(&self, pid: u32) -> Option<u32>;
    fn executable(&self, pid: u32) -> Option<String>;
    fn args(&self, pid: u32) -> Vec<String>;
}

#[derive(Debug, Default)]
pub struct ProcessTable {
    procs: HashMap<u32, Entry>,
    exited: VecDeque<(u32, u64)>,
    generation: u64,
}

impl ProcessTable {
    /// `pid` was forked by `ppid`: it runs what its parent runs until it execs.
    pub fn forked(&mut self, pid: u32, ppid: u32) {
        let (executable, args) = self
            .procs
            .get(&ppid)
            .map(|p| (p.executable.clone(), p.args.clone()))
            .unwrap_or_default();
        self.insert(pid, ppid, executable, args);
    }

    /// `pid` exec'd `executable` with `args`.
    pub fn execed(&mut self, pid: u32, ppid: u32, executable: String, args: Vec<String>) {
        match self.procs.get_mut(&pid) {
            Some(p) if !p.exited => {
                p.ppid = ppid;
                p.executable = executable;
                p.args = bounded(args);
            }
            _ => self.insert(pid, ppid, executable, args),
        }
    }

    pub fn exited(&mut self, pid: u32) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.exited = true;
        self.exited.push_back((pid, p.generation));
        while self.exited.len() > MAX_EXITED {
            let Some((old, generation)) = self.exited.pop_front() else {
                break;
            };
            if self
                .procs
                .get(&old)
                .is_some_and(|p| p.exited && p.generation == generation)
            {
                self.procs.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The processes that started `pid`, its parent first, at most [`MAX_ANCESTORS`]. The chain
    /// follows the table; where it leaves it (a process started before the container was
    /// watched, or the runtime that started the container's first process), /proc names one
    /// more, and the chain ends there.
    pub fn ancestry(&self, pid: u32, procfs: &dyn Procfs) -> Vec<Ancestor> {
        let mut out = Vec::new();
        let mut parent = match self.procs.get(&pid) {
            Some(p) => p.ppid,
            None => match procfs.parent(pid) {
                Some(pp) => pp,
                None => return out,
            },
        };
        while parent > 0 && out.len() < MAX_ANCESTORS {
            if parent == pid || out.iter().any(|a: &Ancestor| a.pid == parent) {
                break; // stale entries of reused pids that point back
            }
            match self.procs.get(&parent) {
                Some(p) => {
                    out.push(Ancestor {
                        pid: parent,
                        executable: p.executable.clone(),
                        args: p.args.clone(),
                    });
                    parent = p.ppid;
                }
                None => {
                    if let Some(executable) = procfs.executable(parent) {
                        out.push(Ancestor {
                            pid: parent,
                            executable,
                            args: bounded(procfs.args(parent)),
                        });
                    }
                    break;
                }
            }
        }
        out
    }

    fn insert(&mut self, pid: u32, ppid: u32, executable: String, args: Vec<String>) {
        if self.procs.len() >= MAX_PROCESSES && !self.procs.contains_key(&pid) {
            // Only exited entries would be dropped in order; a table full of live processes
            // (a fork bomb) starts over rather than grow.
            self.procs.retain(|_, p| !p.exited);
            self.exited.clear();
            if self.procs.len() >= MAX_PROCESSES {
                self.procs.clear();
            }
        }
        self.generation += 1;
        self.procs.insert(
            pid,
            Entry {
                ppid,
                executable,
                args: bounded(args),
                generation: self.generation,
                exited: false,
            },
        );
    }
}

fn bounded(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .take(MAX_ARGS)
        .map(|mut a| {
            if a.len() > MAX_ARG_BYTES {
                let mut cut = MAX_ARG_BYTES;
                while !a.is_char_boundary(cut) {
                    cut -= 1;
                }
                a.truncate(cut);
            }
            a
        })
        .collect()
}

/// The real /proc.
pub struct HostProcfs;

impl Procfs for HostProcfs {
    fn parent(&self, pid: u32) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
    }

    fn executable(&self, pid: u32) -> Option<String> {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    fn args(&self, pid: u32) -> Vec<String> {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .take(MAX_ARGS)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A /proc that knows nothing: for tests of what the kernel's events alone tell.
#[cfg(test)]
pub(crate) struct NoProcfs;

#[cfg(test)]
impl Procfs for NoProcfs {
    fn parent(&self, _: u32) -> Option<u32> {
        None
    }
    fn executable(&self, _: u32) -> Option<String> {
        None
    }
    fn args(&self, _: u32) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::NoProcfs as NoProc;

    /// The runtime (pid 10, outside the table) started a shell (11), which forked (12) and
    /// exec'd cat; the shell then exited.
    #[test]
    fn the_chain_names_exited_ancestors_and_ends_where_the_table_does() {
        let mut t = ProcessTable::default();
        t.execed(
            11,
            10,
            "/bin/sh".into(),
            vec!["sh".into(), "-c".into(), "cat x".into()],
        );
        t.forked(12, 11);
        t.execed(12, 11, "/bin/cat".into(), vec!["cat".into(), "x".into()]);
        t.exited(11);
        struct Runtime;
        impl Procfs for Runtime {
            fn parent(&self, _: u32) -> Option<u32> {
                Some(1)
            }
            fn executable(&self, pid: u32) -> Option<String> {
                (pid == 10).then(|| "/usr/bin/containerd-shim-runc-v2".into())
            }
            fn args(&self, _: u32) -> Vec<String> {
                Vec::new()
            }
        }
        let chain = t.ancestry(12, &Runtime);
        assert_eq!(
            chain
                .iter()
                .map(|a| (a.pid, a.executable.as_str()))
                .collect::<Vec<_>>(),
            [(11, "/bin/sh"), (10, "/usr/bin/containerd-shim-runc-v2")]
        );
        assert_eq!(chain[0].args, ["sh", "-c", "cat x"]);
        // A fork that has not exec'd runs its parent's program.
        t.forked(13, 12);
        assert_eq!(t.ancestry(13, &NoProc)[0].executable, "/bin/cat");
    }

    #[test]
    fn the_table_stays_bounded_and_a_reused_pid_is_a_new_process() {
        let mut t = ProcessTable::default();
        for pid in 2..(MAX_EXITED as u32 + 100) {
            t.forked(pid, 1);
            t.exited(pid);
        }
        assert!(t.len() <= MAX_EXITED, "{}", t.len());
        t.forked(50_000, 1);
        t.exited(50_000);
        // The pid is reused by a live process before the exited one is forgotten.
        t.execed(50_000, 7, "/new".into(), Vec::new());
        for pid in 60_000..(60_000 + MAX_EXITED as u32) {
            t.forked(pid, 1);
            t.exited(pid);
        }
        assert_eq!(t.procs.get(&50_000).map(|p| p.ppid), Some(7));
        let long = "x".repeat(1000);
        t.execed(9, 1, "/p".into(), vec![long; 20]);
        let p = &t.procs[&9];
        assert_eq!(p.args.len(), MAX_ARGS);
        assert!(p.args.iter().all(|a| a.len() == MAX_ARG_BYTES));
    }

    #[test]
    fn a_pid_loop_ends() {
        let mut t = ProcessTable::default();
        t.execed(5, 6, "/a".into(), Vec::new());
        t.execed(6, 5, "/b".into(), Vec::new());
        assert_eq!(t.ancestry(5, &NoProc).len(), 1);
    }
}
