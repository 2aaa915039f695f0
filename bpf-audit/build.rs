//! Compiles the BPF C programs with libbpf-cargo (clang, `-target bpf`) into OUT_DIR.
//!
//! The programs use UAPI headers (`<linux/bpf.h>`), the libbpf headers that libbpf-cargo ships,
//! and `src/bpf/kernel_types.h`: the few kernel structures the sensors read, declared with
//! CO-RE relocations, so no bpftool or generated vmlinux.h is needed at build time. With `-target bpf` clang does not
//! search the multiarch include directory (`/usr/include/<triple>`) that holds `<asm/types.h>`,
//! so it is added here.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCES: &[&str] = &[
    "connect_guard",
    "flow_sensor",
    "ingress_guard",
    "lsm_probe",
    "process_sensor",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = format!("/usr/include/{arch}-linux-gnu");

    for name in SOURCES {
        let src = PathBuf::from(format!("src/bpf/{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        println!("cargo:rerun-if-changed=src/bpf/kernel_types.h");
        println!("cargo:rerun-if-changed=src/bpf/ring_counts.h");
        let obj = out.join(format!("{name}.bpf.o"));
        if let Err(e) = SkeletonBuilder::new()
            .source(&src)
            .obj(&obj)
            .clang_args(["-Wall", "-Werror", "-I", multiarch.as_str()])
            .build()
        {
            panic!(
                "compiling {} failed: {e:#}\n\
                 (needs clang and the kernel UAPI headers: run scripts/setup-node as root)",
                src.display()
            );
        }
    }
}
