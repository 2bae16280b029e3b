//! Embeds `contracts/` at compile time: generates `$OUT_DIR/embedded.rs`, a sorted table of
//! `(path relative to contracts/, include_str!(absolute path))` for every JSON and YAML file.
//! A generated table of `include_str!`s instead of a crate like `include_dir` keeps the
//! dependency list short; `rerun-if-changed` on the directory rebuilds when any file changes.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let contracts = manifest_dir.join("../../contracts");
    println!("cargo:rerun-if-changed={}", contracts.display());
    let mut files = Vec::new();
    if contracts.is_dir() {
        collect(&contracts, &contracts, &mut files);
    }
    files.sort();
    let mut out = String::from(
        "/// Every JSON and YAML file under `contracts/`, by path relative to it, sorted.\n\
         pub(crate) static FILES: &[(&str, &str)] = &[\n",
    );
    for (relative, absolute) in &files {
        out.push_str(&format!(
            "    ({relative:?}, include_str!({absolute:?})),\n"
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("embedded.rs");
    fs::write(dest, out).expect("write embedded.rs");
}

/// Walks `dir` recursively, pushing `(relative path with '/', absolute path)` of each embedded file.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if is_embedded(&path) {
            let relative = path.strip_prefix(root).expect("under root");
            let relative: Vec<_> = relative.iter().map(|c| c.to_string_lossy()).collect();
            let absolute = path.canonicalize().expect("canonical path");
            files.push((relative.join("/"), absolute.display().to_string()));
        }
    }
}

fn is_embedded(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml" | "yml")
    )
}
