//! Normalisation is idempotent, yields absolute paths without `.`/`..`/empty segments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::normalize_path;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(n) = normalize_path(path) {
        assert!(n.starts_with('/'));
        assert!(n == "/" || !n.ends_with('/'));
        assert!(!n[1..].split('/').any(|s| s == "." || s == ".."));
        assert_eq!(normalize_path(&n).as_deref(), Some(&*n));
    }
});
