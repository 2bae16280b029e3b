//! The README's "Five-minute tour", run verbatim: every fenced `sh` block of that section, in
//! order, through `sh -e` against a fresh server started from the repository root with the
//! tour's `--config examples/tour.yaml` (`ACE_SERVER`, `ACE_DATA` point at it), with the binary
//! under test first on `PATH`, the `export NAME=value` lines of the section's `bash` blocks in
//! the environment (but `PATH`, and with the test's own `ACE_SERVER` and `ACE_DATA` in place of
//! the README's), and a temporary working directory; the repository root gains no file from it
//! (the tour's files go to the scratch directory, the server's to its data directory). Each
//! block must exit 0 (a
//! block expecting a refusal says so with `!`), so the README cannot drift from what the binary
//! does. `sh -e` does not stop at a `!` command, so a `!` line must end its block: a test holds
//! the README to that.

use std::path::Path;
use std::process::Command;

use crate::serve::start_in;

/// The `export NAME=value` lines of the `bash` blocks of the tour section, but `PATH`.
fn tour_exports(readme: &str) -> Vec<(String, String)> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Five-minute tour"))
        .expect("README.md has a `## Five-minute tour` section");
    let mut exports = Vec::new();
    let mut in_bash = false;
    for line in section.lines() {
        match line.trim_end() {
            "```bash" => in_bash = true,
            "```" => in_bash = false,
            text if in_bash => {
                if let Some((name, value)) = text
                    .strip_prefix("export ")
                    .and_then(|rest| rest.split_once('='))
                    .filter(|(name, _)| *name != "PATH")
                {
                    exports.push((name.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    exports
}

/// The `sh` blocks of the `## Five-minute tour` section of `readme`, in order.
fn tour_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Five-minute tour"))
        .expect("README.md has a `## Five-minute tour` section");
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == "```sh" {
            let block: Vec<&str> = lines
                .by_ref()
                .take_while(|l| l.trim_end() != "```")
                .collect();
            blocks.push(block.join("\n"));
        }
    }
    blocks
}

#[test]
fn given_the_readme_tour_when_blocks_are_extracted_then_only_sh_blocks_of_the_section_count() {
    let readme = "# X\n```sh\nnot this\n```\n## Five-minute tour\ntext\n```sh\na\nb\n```\n\
                  ```bash\nnot bash\n```\n```sh\nc\n```\n## Next\n```sh\nnor this\n```\n";
    assert_eq!(tour_blocks(readme), ["a\nb", "c"]);
    let exports = tour_exports(readme);
    assert!(exports.is_empty(), "{exports:?}");
    let with = "# X\n## Five-minute tour\n```bash\nexport PATH=x\nexport ACE_API_KEY=k\n```\n";
    assert_eq!(tour_exports(with), [("ACE_API_KEY".into(), "k".into())]);
}

#[test]
fn given_a_fresh_server_when_the_readme_tour_runs_verbatim_then_every_block_exits_0() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let blocks = tour_blocks(&readme);
    assert!(blocks.len() >= 5, "the tour has {} sh blocks", blocks.len());
    for block in &blocks {
        let lines: Vec<&str> = block.lines().collect();
        let early = &lines[..lines.len().saturating_sub(1)];
        assert!(
            early.iter().all(|l| !l.trim_start().starts_with("! ")),
            "a `!` line that does not end its block is never checked by `sh -e`:\n{block}"
        );
    }

    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root_before = names(&root);
    let server = start_in(&root, data.path(), &["--config", "examples/tour.yaml"]);
    let exports = tour_exports(&readme);
    assert!(
        exports.iter().any(|(name, _)| name == "ACE_API_KEY"),
        "the tour exports the admin key: {exports:?}"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ace-comms")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for block in &blocks {
        let output = Command::new("sh")
            .args(["-e", "-c", block])
            .current_dir(work.path())
            .env("PATH", &path)
            .envs(exports.iter().map(|(k, v)| (k, v)))
            .env("ACE_SERVER", format!("http://{}", server.addr))
            .env("ACE_DATA", data.path())
            .output()
            .unwrap();
        if !output.status.success() {
            failures.push(format!(
                "{block}\n-> {}\nstdout:\n{}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let (code, _, stderr) = server.terminate();
    assert!(
        failures.is_empty(),
        "tour blocks failed:\n{}",
        failures.join("\n\n")
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        names(&root),
        root_before,
        "the tour left files in the repository root"
    );
    assert!(
        work.path().join("held.txt").is_file(),
        "the tour's files are in its scratch directory"
    );
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    names
}
