//! What the agent needs to know about a stopped task, from /proc/<tid>/status: its filesystem
//! credentials and umask (to open files as it would) and its pid inside the container's pid
//! namespace (to give `/proc/self` its meaning).

use std::io;

use crate::sys::creds::FsCreds;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub creds: FsCreds,
    pub umask: u32,
    /// The thread group's pid, as the agent sees it.
    pub tgid: u32,
    /// The thread group's and the thread's pids in the innermost pid namespace.
    pub ns_tgid: u32,
    pub ns_tid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("cannot read /proc/{tid}/status: {source}")]
    Read { tid: u32, source: io::Error },
    #[error("/proc/{tid}/status has no usable {field} line")]
    Field { tid: u32, field: &'static str },
}

impl TaskInfo {
    pub fn read(tid: u32) -> Result<Self, TaskError> {
        let text = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .map_err(|source| TaskError::Read { tid, source })?;
        Self::parse(tid, &text)
    }

    pub fn parse(tid: u32, text: &str) -> Result<Self, TaskError> {
        let field = |name: &'static str| -> Result<Vec<&str>, TaskError> {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|r| r.split_whitespace().collect())
                .ok_or(TaskError::Field { tid, field: name })
        };
        let num = |name: &'static str, idx: usize| -> Result<u32, TaskError> {
            field(name)?
                .get(idx)
                .and_then(|v| v.parse().ok())
                .ok_or(TaskError::Field { tid, field: name })
        };
        let last = |name: &'static str| -> Result<u32, TaskError> {
            field(name)?
                .last()
                .and_then(|v| v.parse().ok())
                .ok_or(TaskError::Field { tid, field: name })
        };
        let groups = field("Groups")?
            .iter()
            .map(|g| {
                g.parse().map_err(|_| TaskError::Field {
                    tid,
                    field: "Groups",
                })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let cap_effective = field("CapEff")?
            .first()
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .ok_or(TaskError::Field {
                tid,
                field: "CapEff",
            })?;
        let umask = field("Umask")?
            .first()
            .and_then(|v| u32::from_str_radix(v, 8).ok())
            .ok_or(TaskError::Field {
                tid,
                field: "Umask",
            })?;
        Ok(Self {
            creds: FsCreds {
                fsuid: num("Uid", 3)?,
                fsgid: num("Gid", 3)?,
                groups,
                cap_effective,
            },
            umask,
            tgid: num("Tgid", 0)?,
            ns_tgid: last("NStgid")?,
            ns_tid: last("NSpid")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_worker_in_a_pid_namespace() {
        let status = "Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5012\nNgid:\t0\n\
            Pid:\t5013\nPPid:\t4990\nUid:\t33\t33\t33\t33\nGid:\t33\t33\t33\t34\nGroups:\t33 100 \n\
            NStgid:\t5012\t7\nNSpid:\t5013\t8\nCapInh:\t0000000000000000\n\
            CapPrm:\t0000000000000000\nCapEff:\t00000000a80425fb\n";
        let t = TaskInfo::parse(5013, status).unwrap();
        assert_eq!(t.creds.fsuid, 33);
        assert_eq!(t.creds.fsgid, 34);
        assert_eq!(t.creds.groups, [33, 100]);
        assert_eq!(t.creds.cap_effective, 0xa80425fb);
        assert_eq!(t.umask, 0o022);
        assert_eq!((t.tgid, t.ns_tgid, t.ns_tid), (5012, 7, 8));
    }

    #[test]
    fn reads_our_own_status() {
        let t = TaskInfo::read(std::process::id()).unwrap();
        assert_eq!(t.tgid, std::process::id());
        assert_eq!(t.creds.fsuid, nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn a_missing_line_is_an_error_naming_it() {
        let err = TaskInfo::parse(1, "Uid:\t0\t0\t0\t0\n").unwrap_err();
        assert!(
            err.to_string().contains("Gid") || err.to_string().contains("Groups"),
            "{err}"
        );
    }
}
