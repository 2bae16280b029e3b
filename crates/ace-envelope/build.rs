//! Compiles `contracts/leyline/*.proto` into Rust with `protox` (a pure-Rust protobuf compiler,
//! so no system `protoc` is needed) and `prost-build`. Maps become `BTreeMap`s so that encoding
//! is deterministic (the same message always gives the same bytes).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/leyline");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    let descriptors = protox::compile(&files, [&dir])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
