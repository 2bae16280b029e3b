//! The crate layering of ARCHITECTURE.md, held by the build: every workspace crate's normal
//! dependencies on its siblings (from `cargo metadata`) must sit on a strictly lower layer than
//! the crate itself, as the map in ARCHITECTURE.md's bird's-eye view gives them (`name (Ln)`), and
//! `ace-testkit` is never a normal dependency. A new upward edge — say `ace-bus` reaching for
//! `ace-core` — fails here with the edge named, before it becomes an import loop.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The workspace root (two levels above this crate).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/ace-testkit sits two levels below the workspace root")
}

/// Each crate of ARCHITECTURE.md's map and its layer: lines such as `ace-core (L4)   …` or
/// `ace-contracts(L1) …`.
fn layers() -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once("(L") else {
            continue;
        };
        let name = name.trim();
        if !name.starts_with("ace-") || name.contains(' ') {
            continue;
        }
        let Some((level, _)) = rest.split_once(')') else {
            continue;
        };
        if let Ok(level) = level.parse() {
            layers.insert(name.to_owned(), level);
        }
    }
    layers
}

/// Each workspace crate and its normal (not dev, not build) dependencies on workspace crates.
fn edges() -> BTreeMap<String, Vec<String>> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .map(|package| {
            let name = package["name"].as_str().expect("a name").to_owned();
            let deps = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| members.contains(d))
                .map(str::to_owned)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn given_the_workspace_when_its_crate_dependencies_are_read_then_each_points_down_a_layer() {
    let layers = layers();
    assert!(
        layers.len() >= 10,
        "ARCHITECTURE.md's map names every crate with its layer: {layers:?}"
    );
    let mut wrong = Vec::new();
    for (krate, deps) in edges() {
        if krate == "ace-testkit" {
            continue;
        }
        let Some(&level) = layers.get(&krate) else {
            wrong.push(format!("{krate} has no layer in ARCHITECTURE.md's map"));
            continue;
        };
        for dep in deps {
            match layers.get(&dep) {
                _ if dep == "ace-testkit" => wrong.push(format!(
                    "{krate} depends on ace-testkit, which is for tests only (a dev-dependency)"
                )),
                Some(&below) if below < level => {}
                Some(&other) => wrong.push(format!(
                    "{krate} (L{level}) depends on {dep} (L{other}): dependencies point down"
                )),
                None => wrong.push(format!("{dep} has no layer in ARCHITECTURE.md's map")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn given_the_bottom_layer_and_the_sdk_when_read_then_they_stay_light() {
    let edges = edges();
    assert_eq!(
        edges["ace-envelope"],
        Vec::<String>::new(),
        "ace-envelope depends on no sibling"
    );
    assert_eq!(
        edges["ace-client"],
        vec!["ace-envelope".to_owned()],
        "the SDK depends on ace-envelope only, never on the server"
    );
}
