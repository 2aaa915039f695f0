//! Whether an exec open is the kernel loading an interpreter for an exec already under way: a
//! script's `#!` interpreter, an ELF's `PT_INTERP` loader, a binfmt_misc handler. Those opens are
//! part of an exec that was decided on its own file, and must not be refused by an allow-list
//! that names the program and not its loader; but the same file exec'd directly (`ld.so
//! /bin/sh`) is a program of its own, and is decided as one.
//!
//! The kernel tells the two apart, not the task: the opener waits in the kernel for the guard's
//! answer, and its kernel stack (/proc/TID/stack) shows whether the open comes from inside a
//! binfmt loader (`load_elf_binary`, `load_script`, ...: reached through a function pointer, so
//! never inlined away) or from the exec syscall itself. Nothing in user space can change that
//! stack, and no other thread can make one exec's interpreter open count for another exec.

use std::fs;

/// Whether this kernel shows task stacks with symbol names (CONFIG_STACKTRACE, root).
pub fn available() -> bool {
    fs::read_to_string("/proc/self/stack").is_ok_and(|s| s.lines().any(|l| symbol(l).is_some()))
}

/// Whether task `tid`, waiting in an exec open, is opening an interpreter for its exec. False
/// when the stack can't be read: the open is then decided as a program of its own.
pub fn loading_interpreter(tid: u32) -> bool {
    fs::read_to_string(format!("/proc/{tid}/stack")).is_ok_and(|s| from_binfmt_loader(&s))
}

/// A frame of a binfmt loader in a stack as /proc/TID/stack prints it.
fn from_binfmt_loader(stack: &str) -> bool {
    stack.lines().filter_map(symbol).any(is_loader)
}

/// `[<0>] load_elf_binary+0x1b1/0x18a0` → `load_elf_binary`.
fn symbol(line: &str) -> Option<&str> {
    let name = line.split_once("] ")?.1.split('+').next()?.trim();
    (!name.is_empty() && !name.starts_with("0x")).then_some(name)
}

/// binfmt_elf (and its compat and fdpic builds), binfmt_script, binfmt_misc, binfmt_flat.
fn is_loader(sym: &str) -> bool {
    sym == "load_script" || (sym.contains("load_") && sym.ends_with("_binary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both captured on this project's 6.18 test kernel, from a fanotify FAN_OPEN_EXEC_PERM wait.
    const MAIN: &str = "[<0>] fanotify_handle_event+0xb93/0x1b70
[<0>] fsnotify+0x392/0xfb0
[<0>] fsnotify_open_perm_and_set_mode+0x13a/0x2c0
[<0>] do_dentry_open+0x144/0x430
[<0>] do_filp_open+0xc3/0x180
[<0>] do_open_execat+0x5d/0x120
[<0>] alloc_bprm+0x20/0x220
[<0>] do_execveat_common.isra.0+0x8d/0x1b0
[<0>] __x64_sys_execve+0x34/0x50
[<0>] do_syscall_64+0x71/0x280
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e
";
    const INTERPRETER: &str = "[<0>] fanotify_handle_event+0xb93/0x1b70
[<0>] do_open_execat+0x5d/0x120
[<0>] open_exec+0x26/0x60
[<0>] load_elf_binary+0x1b1/0x18a0
[<0>] bprm_execve+0x2bf/0x510
[<0>] do_execveat_common.isra.0+0x1a6/0x1b0
[<0>] __x64_sys_execve+0x34/0x50
";

    #[test]
    fn an_interpreter_open_comes_from_a_binfmt_loader_and_the_program_s_own_does_not() {
        assert!(!from_binfmt_loader(MAIN));
        assert!(from_binfmt_loader(INTERPRETER));
        assert!(from_binfmt_loader(
            "[<0>] open_exec+0x26/0x60\n[<0>] load_script+0x1ed/0x310\n"
        ));
        assert!(from_binfmt_loader("[<0>] load_misc_binary+0x1/0x2\n"));
        assert!(from_binfmt_loader("[<0>] compat_load_elf_binary+0x1/0x2\n"));
        // Unreadable or symbol-less stacks tell nothing: decided as a program.
        assert!(!from_binfmt_loader(""));
        assert!(!from_binfmt_loader("[<0>] 0x0\n"));
    }

    #[test]
    fn this_kernel_shows_stacks() {
        // Root on a kernel with CONFIG_STACKTRACE (every kernel rampart's CI runs on).
        if nix::unistd::geteuid().is_root() {
            assert!(available());
            assert!(!loading_interpreter(std::process::id()));
        }
    }
}
