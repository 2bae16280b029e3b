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
    let url = &*server_url(&server.server);
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

/// `--server` as a URL: `host:port` (like `nats -s`) means `http://host:port`.
pub(crate) fn server_url(server: &str) -> std::borrow::Cow<'_, str> {
    if server.contains("://") {
        server.into()
    } else {
        format!("http://{server}").into()
    }
}

/// The server's message without a leading restatement of its code (`forbidden: …` under
/// `FORBIDDEN`), so the printed line names the code once.
fn without_code(code: ErrorCode, message: &str) -> &str {
    let spoken = code.as_str().to_ascii_lowercase().replace('_', " ");
    let lower = message.to_ascii_lowercase();
    [spoken.as_str(), code.as_str()]
        .iter()
        .find_map(|prefix| {
            let rest = lower.strip_prefix(&prefix.to_ascii_lowercase())?;
            rest.starts_with(':')
                .then(|| message[prefix.len() + 1..].trim_start())
        })
        .unwrap_or(message)
}

/// A call's failure as the command's result: a refusal by the server (or no reply in time) is
/// printed with its code and message and exits 1; anything else (unreachable, a broken answer)
/// is an error, exit 2 — an unreachable server with a hint.
pub(crate) fn failed(err: ClientError) -> Result<Outcome> {
    match err {
        ClientError::Api { body, .. } => {
            let message = without_code(body.error.code, &body.error.message);
            eprintln!("error: {}: {message}", body.error.code);
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
        err @ ClientError::Transport { .. } => Err(anyhow::Error::new(err).context(
            "the server could not be reached: is it running, and is --server (or ACE_SERVER) \
             its address? `ace-comms serve` starts one on http://127.0.0.1:8500",
        )),
        err => Err(anyhow::Error::new(err)),
    }
}

/// The payload argument: JSON as written, `{}` when absent; text that is not JSON is refused
/// (a typo in a JSON document must not travel as a string) unless `raw`, which sends the text
/// as a JSON string.
pub(crate) fn payload(text: Option<&str>, raw: bool) -> Result<serde_json::Value> {
    match text {
        None => Ok(serde_json::json!({})),
        Some(text) if raw => Ok(serde_json::Value::String(text.to_owned())),
        Some(text) => serde_json::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "the payload is not JSON ({err}); quote a JSON document, or pass --raw to send \
                 the text as a JSON string"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_json_text_or_plain_text_when_read_as_payload_then_text_needs_raw() {
        let json = payload(Some(r#"{"a":1}"#), false).unwrap();
        assert_eq!(json, serde_json::json!({"a": 1}));
        let err = payload(Some("{a:1}"), false).unwrap_err().to_string();
        assert!(err.contains("not JSON") && err.contains("--raw"), "{err}");
        assert_eq!(
            payload(Some("hello"), true).unwrap(),
            serde_json::json!("hello")
        );
        assert_eq!(
            payload(Some(r#"{"a":1}"#), true).unwrap(),
            serde_json::json!(r#"{"a":1}"#)
        );
        assert_eq!(payload(None, false).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn given_host_and_port_when_used_as_server_then_http_is_assumed() {
        assert_eq!(server_url("127.0.0.1:8500"), "http://127.0.0.1:8500");
        assert_eq!(server_url("https://h:1"), "https://h:1");
    }

    #[test]
    fn given_a_message_restating_its_code_when_printed_then_the_code_appears_once() {
        let forbidden = without_code(ErrorCode::Forbidden, "forbidden: agent-1 may not publish");
        assert_eq!(forbidden, "agent-1 may not publish");
        let unknown = without_code(ErrorCode::StreamNotFound, "stream not found: ORDERS");
        assert_eq!(unknown, "ORDERS");
        let kept = without_code(ErrorCode::Forbidden, "the forbidden fruit: no");
        assert_eq!(kept, "the forbidden fruit: no");
    }
}
