//! The BPF filesystem, where programs' links and maps are pinned so that they outlive the
//! process that loaded them (an enforcer's restart must not open a gap).

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

/// Mounts a bpffs at `at` (normally /sys/fs/bpf) unless one is there.
pub fn ensure_mounted(at: &Path) -> std::io::Result<()> {
    if statfs(at).is_ok_and(|fs| fs.filesystem_type() == BPF_FS_MAGIC) {
        return Ok(());
    }
    std::fs::create_dir_all(at)?;
    mount(
        Some("bpf"),
        at,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| {
        std::io::Error::other(format!(
            "cannot mount a bpffs at {}: {e} (needs root)",
            at.display()
        ))
    })
}
