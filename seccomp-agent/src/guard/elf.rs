//! Whether an executable runs without anything else being opened for exec: an ELF file with no
//! program interpreter (a static binary). Its allowed exec can be remembered in the kernel; a
//! dynamic one's can't, because its loader's exec open must be seen to follow it (`approvals`).

use std::os::fd::BorrowedFd;

use nix::sys::uio::pread;

const PT_INTERP: u32 = 3;
/// Program headers read at most (static binaries have a dozen).
const MAX_PHDRS: usize = 64;

/// True for a 64-bit little-endian ELF file whose program headers name no interpreter.
/// Anything else (a script, a dynamic binary, a short or unreadable file) is false.
pub fn is_static(file: BorrowedFd<'_>) -> bool {
    let mut h = [0u8; 64];
    if !matches!(pread(file, &mut h, 0), Ok(64)) {
        return false;
    }
    // ELFCLASS64, ELFDATA2LSB.
    if h[..4] != *b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(h[32..40].try_into().unwrap_or_default());
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    if phentsize < 56 || phnum == 0 || phnum > MAX_PHDRS {
        return false;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    let Ok(off) = i64::try_from(phoff) else {
        return false;
    };
    if !matches!(pread(file, &mut ph, off), Ok(n) if n == ph.len()) {
        return false;
    }
    !ph.chunks(phentsize)
        .any(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) == PT_INTERP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_dynamic_binary_and_a_script_are_not_static() {
        // This test binary is dynamically linked (it has PT_INTERP).
        let me = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(!is_static(me.as_fd()));
        let dir = std::env::temp_dir().join(format!("elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert!(!is_static(std::fs::File::open(&script).unwrap().as_fd()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_static_binary_is_static_and_the_same_program_linked_dynamically_is_not() {
        let dir = std::env::temp_dir().join(format!("elf-static-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("m.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let build = |out: &str, flags: &[&str]| {
            std::process::Command::new("gcc")
                .args(flags)
                .arg("-o")
                .arg(dir.join(out))
                .arg(&src)
                .status()
        };
        match build("static", &["-static"]) {
            Ok(s) if s.success() => {}
            // gcc (and the static libc) come with `make setup`; without them, nothing to test.
            _ => {
                eprintln!("gcc -static unavailable; skipped");
                return;
            }
        }
        assert!(build("dynamic", &[]).unwrap().success());
        let open = |n: &str| std::fs::File::open(dir.join(n)).unwrap();
        assert!(is_static(open("static").as_fd()));
        assert!(!is_static(open("dynamic").as_fd()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
