//! Loads a contracts tree from disk as `(path relative to the root, text)` pairs, the shape
//! `Registry::from_files` takes, so tests can use fixture trees and the real one alike.

use std::{fs, path::Path};

use ace_contracts::Registry;

/// Every file under `root`, recursively, by `/`-separated relative path.
pub(crate) fn read_tree(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under root");
            let relative: Vec<_> = relative.iter().map(|c| c.to_string_lossy()).collect();
            files.push((
                relative.join("/"),
                fs::read_to_string(&path).expect("utf-8 file"),
            ));
        }
    }
}

/// The fixture tree `tests/fixtures/<name>` loaded as a registry.
pub(crate) fn fixture_registry(name: &str) -> Registry {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let files = read_tree(&root);
    Registry::from_files(files.iter().map(|(p, t)| (p.as_str(), t.as_str())))
        .expect("fixture loads")
}
