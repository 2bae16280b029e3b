//! Test support shared by the crates' integration tests (a dev-dependency only).
//!
//! The rule for a test that needs a real service: its URL comes from the environment with the
//! loopback default; when the service is unreachable the test fails under `CI=true` (so CI can
//! never pass by skipping) and otherwise skips with a loud `SKIPPED` line on stderr.
//!
//! [`powerloss`]: a device behind `ace_log::Durability` that forgets every write not yet made
//! durable at a chosen operation, for the crash-point sweeps of `ace-log` and `ace-bus`.
//! [`files`] and [`assert_same_files`] prove an operation changed no byte of a directory.

pub mod powerloss;

/// The PostgreSQL the tests use: `ACE_TEST_POSTGRES_URL`, by default the local server's `test`
/// database.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL of a reachable PostgreSQL for `test`, or `None` after a loud notice when there is
/// none. Panics under `CI=true` when it is unreachable.
///
/// The probe connects on a thread of its own, so it may be called inside or outside a tokio
/// runtime (the blocking `postgres` client panics inside one).
pub fn postgres_url(test: &str) -> Option<String> {
    let url =
        std::env::var("ACE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let probe = url.clone();
    let reached = std::thread::spawn(move || {
        postgres::Client::connect(&probe, postgres::NoTls)
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .join()
    .unwrap_or_else(|_| Err("the probe panicked".to_owned()));
    match reached {
        Ok(()) => Some(url),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL at {url} is unreachable under CI=true: {e}"
            );
            eprintln!(
                "SKIPPED {test}: PostgreSQL at {url} is unreachable ({e}); set ACE_TEST_POSTGRES_URL"
            );
            None
        }
    }
}

/// The NATS server (with JetStream) the tests use: `ACE_TEST_NATS_URL`, by default the local one.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The URL of a reachable NATS server for `test` (its port accepts a connection), or `None`
/// after a loud notice when there is none. Panics under `CI=true` when it is unreachable.
pub fn nats_url(test: &str) -> Option<String> {
    let url = std::env::var("ACE_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
    let address = url.rsplit("://").next().unwrap_or(&url).to_owned();
    let reached = std::net::ToSocketAddrs::to_socket_addrs(address.as_str())
        .map_err(|e| e.to_string())
        .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_owned()))
        .and_then(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    match reached {
        Ok(()) => Some(url),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "NATS at {url} is unreachable under CI=true: {e}"
            );
            eprintln!("SKIPPED {test}: NATS at {url} is unreachable ({e}); set ACE_TEST_NATS_URL");
            None
        }
    }
}

/// Deletes every JetStream stream of the NATS server at `url` whose name starts with `prefix`
/// (a test's own streams, whatever it left behind). Best effort: an unreachable server or a
/// stream deleted meanwhile is not an error.
pub async fn delete_nats_streams(url: &str, prefix: &str) {
    use futures::StreamExt as _;
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for name in names.into_iter().filter(|n| n.starts_with(prefix)) {
        let _ = js.delete_stream(&name).await;
    }
}

/// A Python interpreter for `test` that can import every module of `modules` (independent
/// checkers from PyPI, e.g. `openapi_spec_validator`): `ACE_TEST_PYTHON` (`.ci/run` points it at
/// the virtual environment it installs them into), by default `python3`. `None` after a loud
/// notice when it cannot; panics under `CI=true` instead.
pub fn python(test: &str, modules: &[&str]) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("ACE_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let imports = format!("import {}", modules.join(", "));
    let probe = std::process::Command::new(&python)
        .args(["-c", &imports])
        .output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Some(python.into()),
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    };
    let python = std::path::Path::new(&python).display().to_string();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{python} cannot `{imports}` under CI=true: {problem}"
    );
    eprintln!(
        "SKIPPED {test}: {python} cannot `{imports}` ({problem}); set ACE_TEST_PYTHON to an \
         interpreter that has them (`bash .ci/run` installs them into .ci/venv)"
    );
    None
}

/// Every file under `dir` (recursively) with its bytes: compare two of them to prove an
/// operation changed no byte of a directory (a dry run).
pub fn files(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut all = std::collections::BTreeMap::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.insert(path, bytes);
        }
    }
    all
}

/// Fails naming the paths whose bytes differ between `before` and `after` (not the bytes).
pub fn assert_same_files(
    before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) {
    let changed: Vec<&std::path::PathBuf> = before
        .keys()
        .chain(after.keys().filter(|p| !before.contains_key(*p)))
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
}
