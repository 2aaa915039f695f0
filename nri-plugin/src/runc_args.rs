//! Just enough of runc's command line to find what rampart-runc needs: the subcommand and, for
//! `create`/`run`, the bundle directory. Everything else passes to runc untouched.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// runc's global options that take a value (`runc --help`); the others are flags.
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub subcommand: Option<String>,
    /// For create and run: the bundle, `.` (runc's default) when not given.
    pub bundle: Option<PathBuf>,
}

impl Invocation {
    /// Whether runc is about to read the bundle's config.json and build a container from it.
    pub fn creates_container(&self) -> bool {
        matches!(self.subcommand.as_deref(), Some("create" | "run"))
    }
}

fn split_eq(arg: &OsStr) -> (&[u8], Option<&[u8]>) {
    let b = arg.as_bytes();
    match b.iter().position(|&c| c == b'=') {
        Some(i) if b.starts_with(b"-") => (&b[..i], Some(&b[i + 1..])),
        _ => (b, None),
    }
}

pub fn parse(args: &[OsString]) -> Invocation {
    let mut i = 0;
    let mut subcommand = None;
    while i < args.len() {
        let (name, inline) = split_eq(&args[i]);
        if name.starts_with(b"-") {
            let takes_value = GLOBAL_WITH_VALUE.iter().any(|g| g.as_bytes() == name);
            i += if takes_value && inline.is_none() {
                2
            } else {
                1
            };
            continue;
        }
        subcommand = Some(String::from_utf8_lossy(name).into_owned());
        i += 1;
        break;
    }
    let mut inv = Invocation {
        subcommand,
        bundle: None,
    };
    if !inv.creates_container() {
        return inv;
    }
    let mut bundle = PathBuf::from(".");
    while i < args.len() {
        let (name, inline) = split_eq(&args[i]);
        if name == b"--bundle" || name == b"-b" {
            match inline {
                Some(v) => bundle = PathBuf::from(OsStr::from_bytes(v)),
                None => {
                    if let Some(v) = args.get(i + 1) {
                        bundle = PathBuf::from(v);
                    }
                    i += 1;
                }
            }
        }
        i += 1;
    }
    inv.bundle = Some(bundle);
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn containerd_shim_create() {
        let inv = parse(&args(
            "--root /run/containerd/runc/k8s.io --log /b/log.json --log-format json \
             create --bundle /b --pid-file /b/init.pid abc",
        ));
        assert_eq!(inv.subcommand.as_deref(), Some("create"));
        assert_eq!(inv.bundle, Some(PathBuf::from("/b")));
    }

    #[test]
    fn short_and_inline_bundle_forms() {
        assert_eq!(parse(&args("create -b /x id")).bundle, Some("/x".into()));
        assert_eq!(
            parse(&args("create --bundle=/y id")).bundle,
            Some("/y".into())
        );
        assert_eq!(parse(&args("--root=/r run id")).bundle, Some(".".into()));
    }

    #[test]
    fn other_subcommands_pass_through() {
        let inv = parse(&args("--root /r --systemd-cgroup start abc"));
        assert_eq!(inv.subcommand.as_deref(), Some("start"));
        assert!(!inv.creates_container());
        assert_eq!(inv.bundle, None);
        assert_eq!(parse(&args("--version")).subcommand, None);
    }
}
