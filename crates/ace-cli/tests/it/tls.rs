//! The client verbs against `ace-comms serve` with TLS (a CA and a server certificate for
//! `127.0.0.1` made by rcgen in a temporary directory, a config file naming them): `--tls-ca`
//! makes `pub`, `consumer add`, `sub` (over wss) and `stream ls` work; without it the
//! handshake is refused (exit 2, pointing at `--tls-ca`); a CA file that does not exist exits 2
//! naming the file; `--tls-cert` without `--tls-key` is a usage error.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use crate::client::{EVENT, Server};
use crate::{ace, write};

/// `ca.pem`, `server.pem` and `server.key` (for `127.0.0.1`) in `dir`, and a config file
/// `ace.yaml` serving TLS with them; its path.
fn tls_config(dir: &Path) -> String {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ace cli test CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    let cert = write(dir, "server.pem", &cert.pem());
    let key = write(dir, "server.key", &key.serialize_pem());
    write(
        dir,
        "ace.yaml",
        &format!("tls:\n  cert: {cert}\n  key: {key}\n"),
    )
}

#[test]
fn given_a_tls_server_when_the_cli_trusts_its_ca_then_pub_sub_and_stream_ls_work() {
    let etc = tempfile::tempdir().unwrap();
    let config = tls_config(etc.path());
    let ca = etc.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let server = Server::start_with(&["--config", &config], &["--tls-ca", ca]);
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let out = server.ok(&["pub", EVENT, r#"{"n":1}"#, "--name", "OVER_TLS"]);
    assert!(out.contains("stream=ACE_EVENTS seq=1"), "{out}");
    server.ok(&["consumer", "add", "ACE_EVENTS", "tls-reader"]);
    let out = server.ok(&[
        "sub",
        "--stream",
        "ACE_EVENTS",
        "--consumer",
        "tls-reader",
        "--ack",
        "--count",
        "1",
        "--timeout",
        "30s",
    ]);
    assert!(
        out.starts_with("[seq 1 delivery 1] ") && out.contains("OVER_TLS"),
        "received over wss: {out}"
    );
    let out = server.ok(&["stream", "ls"]);
    assert!(out.contains("ACE_EVENTS"), "{out}");

    // Without the CA the server's certificate is unknown: exit 2, and what to do.
    let refused = ace(&["--server", &server.url, "stream", "ls"], b"");
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not signed by a trusted CA")
            && refused.stderr.contains("--tls-ca"),
        "{}",
        refused.stderr
    );
}

#[test]
fn given_a_missing_ca_file_when_a_client_verb_runs_then_exit_2_naming_the_file() {
    let etc = tempfile::tempdir().unwrap();
    let missing = etc.path().join("no-such-ca.pem");
    let missing = missing.to_str().unwrap();
    // no server is needed: the file is read before anything is sent
    let run = ace(
        &[
            "--server",
            "https://127.0.0.1:9",
            "--tls-ca",
            missing,
            "stream",
            "ls",
        ],
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(missing) && run.stderr.contains("TLS CA file"),
        "{}",
        run.stderr
    );
}

#[test]
fn given_a_client_certificate_without_its_key_when_parsed_then_a_usage_error() {
    let etc = tempfile::tempdir().unwrap();
    let cert = write(etc.path(), "agent.pem", "unused");
    let run = ace(&["--tls-cert", &cert, "stream", "ls"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--tls-key"), "{}", run.stderr);
    let run = ace(&["stream", "ls", "--tls-key", &cert], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--tls-cert"), "{}", run.stderr);
}

#[test]
fn given_the_help_when_printed_then_the_tls_flags_and_their_variables_show() {
    let run = ace(&["--help"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    for flag in [
        "--tls-ca",
        "ACE_TLS_CA",
        "--tls-cert",
        "ACE_TLS_CERT",
        "--tls-key",
        "ACE_TLS_KEY",
    ] {
        assert!(run.stdout.contains(flag), "{flag} missing:\n{}", run.stdout);
    }
}
