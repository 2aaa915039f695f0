//! A process's start time from `/proc/<pid>/stat`: with the pid, the identity that survives pid
//! reuse (a new process on the same pid starts later).

use std::io;

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks after boot.
///
/// Works for zombies and for thread ids too (`/proc/<tid>/stat` is readable though not listed).
/// The pid is read in rampartd's own pid namespace (its `/proc`).
pub fn start_time(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_start_time(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat has no start time field: {text:?}"),
        )
    })
}

/// The start time of a `stat` line. The command name (field 2) is any 16 bytes in parentheses,
/// spaces and `)` included, so fields are counted from the *last* `)`.
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: field 22 is the 20th of them.
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "4242 (sleep) S 1 4242 4242 0 -1 4194560 104 0 0 0 0 0 0 0 20 0 1 0 \
                        987654 2224128 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
                        0 0 0 0 0\n";

    #[test]
    fn reads_field_22() {
        assert_eq!(parse_start_time(REAL), Some(987654));
    }

    #[test]
    fn a_name_with_spaces_and_parens_does_not_shift_fields() {
        let tricky = REAL.replace("(sleep)", "(a) 1 2 (b) c)");
        assert_eq!(parse_start_time(&tricky), Some(987654));
    }

    #[test]
    fn truncated_or_garbled_lines_are_none() {
        assert_eq!(parse_start_time("4242 (sleep) S 1 2 3"), None);
        assert_eq!(parse_start_time("no parens at all"), None);
        assert_eq!(parse_start_time(&REAL.replace("987654", "x")), None);
    }

    #[test]
    fn our_own_start_time_is_stable() {
        let me = std::process::id();
        let first = start_time(me).expect("own stat is readable");
        assert_eq!(start_time(me).unwrap(), first);
    }
}
