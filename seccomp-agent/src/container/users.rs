//! User names as a container knows them: its own /etc/passwd, read from the root's layers on the
//! host's side (`container::layers`) rather than through the container's mounts, which the file
//! guard watches (an open there would wait for the guard's own answer).

use std::os::fd::AsFd;

use crate::container::layers::root_layers;
use crate::guard::mounts::task_root;

/// More than any real passwd file.
const MAX_PASSWD: usize = 4 << 20;

/// The name of `uid` in task `tid`'s container, if its /etc/passwd has one.
pub fn name_of(tid: u32, uid: u32) -> Option<String> {
    let root = task_root(tid).ok()?;
    let passwd = root_layers()
        .of(tid, root.as_fd())?
        .read("etc/passwd", MAX_PASSWD)?;
    name_in(&String::from_utf8_lossy(&passwd), uid).map(str::to_owned)
}

/// The first entry of `passwd` with `uid` (name:password:uid:gid:…).
fn name_in(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.trim().parse().ok()?;
        (id == uid && !name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_name_of_a_uid() {
        let p = "root:x:0:0:root:/root:/bin/sh\n# comment\nwww-data:x:33:33::/var/www:/bin/false\ntoor:x:0:0::/:/bin/sh\nbad line\n";
        assert_eq!(name_in(p, 0), Some("root"));
        assert_eq!(name_in(p, 33), Some("www-data"));
        assert_eq!(name_in(p, 1000), None);
    }
}
