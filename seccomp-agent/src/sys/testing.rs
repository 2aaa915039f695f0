//! Memory layouts the unit tests build to look like a task's: raw structs and mappings that
//! safe code can't make.

/// `N` zeroed `struct mmsghdr`s, as a sendmmsg caller starts from.
pub fn zeroed_mmsghdrs<const N: usize>() -> [libc::mmsghdr; N] {
    // SAFETY: mmsghdr is plain data (pointers and integers); all-zero is a valid value of it.
    unsafe { std::mem::zeroed() }
}

/// A page of our own memory whose next page is unmapped, so that a read running past its end
/// faults. Leaked: the tests that use it are short-lived.
pub fn page_before_a_hole() -> &'static mut [u8] {
    let page = 4096usize;
    // SAFETY: a fresh anonymous private mapping touches no existing memory; its second page is
    // unmapped before anything can use it, and the first is handed out as the only reference to
    // it (never unmapped, so 'static holds).
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::munmap(p.cast::<u8>().add(page).cast(), page), 0);
        std::slice::from_raw_parts_mut(p.cast::<u8>(), page)
    }
}
