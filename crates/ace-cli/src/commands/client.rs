//! What every client verb shares: the connection to `--server`, the runtime the async client
//! runs on, and the one mapping of client failures onto the exit codes.
//!
//! Exit codes of the client verbs: `0` done; `1` the server refused (an error answer: its code
//! and message are printed, e.g. `NOT_FOUND`, `INVALID_SUBJECT`, `SCHEMA_VIOLATION`); `2` a
//! usage error or the server could not be reached (connection refused, timeout, bad URL, an
//! unreadable `--tls-*` file, a refused TLS handshake).

use std::future::Future;

use ace_client::{Client, ClientBuilder, ClientError};
use ace_envelope::ErrorCode;
use anyhow::{Context, Result};

use super::Outcome;
use crate::args::ServerArgs;

/// A client of the server at `url` and a runtime to drive it.
pub(crate) struct Session {
    pub(crate) client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Connects lazily: nothing goes on the wire before the first call. Every request carries
    /// the `--token` or `--api-key` given.
    pub(crate) fn new(server: &ServerArgs) -> Result<Self> {
        let client = client(server)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Session { client, runtime })
    }

    /// Runs one client call to its end.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// A client of `--server` trusting `--tls-ca`, presenting `--tls-cert`/`--tls-key` and the
/// `--token` or `--api-key` given (no request is sent; the TLS files are read now).
pub(crate) fn client(server: &ServerArgs) -> Result<Client> {
    client_with(server, |builder| builder)
}

/// [`client`], with `tune` setting the rest of the builder (the bench bounds the pool).
pub(crate) fn client_with(
    server: &ServerArgs,
    tune: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<Client> {
    let url = &server.server;
    let mut builder = tune(Client::builder(url));
    if let Some(ca) = &server.tls_ca {
        builder = builder.tls_ca(ca.as_path());
    }
    // clap admits one only with the other
    if let (Some(cert), Some(key)) = (&server.tls_cert, &server.tls_key) {
        builder = builder.tls_identity(cert.as_path(), key.as_path());
    }
    let client = builder.build().map_err(|err| match err {
        // a TLS error names its file already
        ClientError::InvalidUrl { .. } => {
            anyhow::Error::new(err).context(format!("--server {url}"))
        }
        err => anyhow::Error::new(err),
    })?;
    Ok(if let Some(token) = &server.token {
        client.with_bearer_token(token)
    } else if let Some(key) = &server.api_key {
        client.with_api_key(key)
    } else {
        client
    })
}

/// A call's failure as the command's result: a refusal by the server (or no reply in time) is
/// printed with its code and message and exits 1; anything else (unreachable, a broken answer)
/// is an error, exit 2.
pub(crate) fn failed(err: ClientError) -> Result<Outcome> {
    match err {
        ClientError::Api { body, .. } => {
            eprintln!("error: {}: {}", body.error.code, body.error.message);
            if !body.error.details.is_null() {
                eprintln!("  details: {}", body.error.details);
            }
            Ok(Outcome::Invalid)
        }
        ClientError::Held(pending) => {
            eprintln!(
                "held: {} is pending approval {} (ace-comms approvals ls)",
                pending.id, pending.approval_id
            );
            Ok(Outcome::Invalid)
        }
        ClientError::Timeout { .. } => {
            eprintln!("error: {}: {err}", ErrorCode::Timeout);
            Ok(Outcome::Invalid)
        }
        err => Err(anyhow::Error::new(err)),
    }
}

/// The payload argument: JSON as written, any other text as a JSON string, `{}` when absent.
pub(crate) fn payload(text: Option<&str>) -> serde_json::Value {
    match text {
        None => serde_json::json!({}),
        Some(text) => serde_json::from_str(text)
            .unwrap_or_else(|_| serde_json::Value::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_json_text_or_plain_text_when_read_as_payload_then_json_stays_json() {
        assert_eq!(payload(Some(r#"{"a":1}"#)), serde_json::json!({"a": 1}));
        assert_eq!(payload(Some("hello")), serde_json::json!("hello"));
        assert_eq!(payload(None), serde_json::json!({}));
    }
}
