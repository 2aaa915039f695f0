//! Compiles protos/proto with prost-build. Needs `protoc` (Debian: protobuf-compiler); PROTOC
//! overrides which one.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let protos = ["proto/nri/api.proto", "proto/rampart/agent/v1/agent.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let mut config = prost_build::Config::new();
    // BTreeMap keeps annotations and labels in a stable order, so logs and tests are deterministic.
    config.btree_map(["."]);
    // The descriptor lets tests compare our field numbers with the runtime's own.
    config.file_descriptor_set_path(out.join("nri_descriptor.bin"));
    if let Err(e) = config.compile_protos(&protos, &["proto"]) {
        panic!(
            "rampart-protos: compiling {protos:?} failed: {e}\n\
             (is protoc installed? `apt-get install protobuf-compiler`, or set PROTOC)"
        );
    }
}
