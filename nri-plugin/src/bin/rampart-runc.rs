//! rampart-runc: see `rampart_nri::runc_wrapper`. Set as the runc runtime's `BinaryName` in
//! containerd's config; it takes exactly runc's arguments.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use rampart_nri::runc_args;
use rampart_nri::runc_wrapper::{find_runc, prepare_bundle};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let inv = runc_args::parse(&args);
    if let (true, Some(bundle)) = (inv.creates_container(), inv.bundle.as_deref())
        && let Err(e) = prepare_bundle(bundle)
    {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let runc = match find_runc(
        std::env::var_os("RAMPART_RUNC").map(PathBuf::from),
        std::env::current_exe().ok(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let err = Command::new(&runc).arg0("runc").args(&args).exec();
    eprintln!("rampart-runc: cannot exec {}: {err}", runc.display());
    ExitCode::from(127)
}
