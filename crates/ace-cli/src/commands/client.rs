//! What every client verb shares: the connection to `--server`, the runtime the async client
//! runs on, and the one mapping of client failures onto the exit codes.
//!
//! Exit codes of the client verbs: `0` done; `1` the server refused (an error answer: its code
//! and message are printed, e.g. `NOT_FOUND`, `INVALID_SUBJECT`, `CONTRACT_VIOLATION`), or no
//! reply came in time (`TIMEOUT`); `2` a usage error or the server could not be reached
//! (`UNREACHABLE`: connection refused, bad URL; an unreadable `--tls-*` file, a refused TLS
//! handshake).

use std::future::Future;

use ace_client::{Client, ClientBuilder, ClientError};
use ace_envelope::{ErrorCode, ErrorDetail};
use anyhow::{Context, Result};

use super::Outcome;
use crate::args::ServerArgs;
use crate::output::{Failure, UNREACHABLE};

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

/// `--server` as a URL: `host:port` (like `nats -s`) means `http://host:port`; several, comma
/// separated, each so.
pub(crate) fn server_url(server: &str) -> std::borrow::Cow<'_, str> {
    let one = |s: &str| {
        if s.contains("://") {
            s.to_owned()
        } else {
            format!("http://{s}")
        }
    };
    if server.contains(',') {
        server
            .split(',')
            .map(|s| one(s.trim()))
            .collect::<Vec<_>>()
            .join(",")
            .into()
    } else if server.contains("://") {
        server.into()
    } else {
        one(server).into()
    }
}

/// A call's failure as the command's result: a refusal by the server keeps its code, message
/// and details (exit 1), as do a held message (`PENDING_APPROVAL`) and no reply in time
/// (`TIMEOUT`); an unreachable server is `UNREACHABLE` and anything else (a broken answer) a
/// usage error, both exit 2. Each carries a hint where there is one to give.
pub(crate) fn failed(err: ClientError) -> Result<Outcome> {
    Err(refused(err))
}

/// [`failed`] as an error, for `?`.
pub(crate) fn refused(err: ClientError) -> anyhow::Error {
    let failure = match err {
        ClientError::Api { body, .. } => refusal(body.error),
        ClientError::Held(pending) => Failure::refused(
            ErrorCode::PendingApproval.as_str(),
            format!(
                "{} is held for approval {}",
                pending.id, pending.approval_id
            ),
        )
        .details(serde_json::json!({ "id": pending.id, "approval_id": pending.approval_id }))
        .hint("`ace-comms approvals ls` lists it; an approver decides"),
        err @ ClientError::Timeout { .. } => {
            Failure::refused(ErrorCode::Timeout.as_str(), err.to_string())
        }
        err @ ClientError::Transport { .. } => Failure {
            exit: 2,
            ..Failure::refused(
                UNREACHABLE,
                format!("the server could not be reached: {err}"),
            )
            .hint(
                "is it running, and is --server (or ACE_SERVER) its address? `ace-comms serve` \
                 starts one on http://127.0.0.1:8500",
            )
        },
        err => Failure::usage(err.to_string()),
    };
    failure.into()
}

/// A refusal in the server's words (exit 1): its code, message and details, and the hint the
/// CLI has for the code. The builder's refusals of an envelope read the same
/// (`ErrorBody::from(&EnvelopeError)`).
pub(crate) fn refusal(error: ErrorDetail) -> Failure {
    let hint = hint(error.code, &error.details);
    let failure = Failure::refused(error.code.as_str(), error.message).details(error.details);
    match hint {
        Some(hint) => failure.hint(hint),
        None => failure,
    }
}

/// What to do about a refusal with `code`, when the CLI has something to say.
fn hint(code: ErrorCode, details: &serde_json::Value) -> Option<String> {
    let text = match code {
        ErrorCode::Unauthenticated => {
            "pass a credential the server accepts: --api-key (ACE_API_KEY) or --token (ACE_TOKEN)"
        }
        ErrorCode::Forbidden => {
            "the credential's principal lacks a role or policy allowing this; an administrator \
             grants it in the server's policy files"
        }
        ErrorCode::StreamNotFound => "`ace-comms stream ls` lists the streams",
        ErrorCode::ConsumerNotFound => "`ace-comms consumer ls STREAM` lists a stream's consumers",
        ErrorCode::UnknownSchema => "`ace-comms contracts list` lists the registered contracts",
        ErrorCode::ContractViolation => {
            "`ace-comms contracts show NAME@VERSION` prints the contract the payload must meet"
        }
        ErrorCode::Backpressure | ErrorCode::InsufficientStorage => {
            return Some(
                match details.get("retry_after_ms").and_then(|v| v.as_u64()) {
                    Some(ms) => format!("retry in {ms} ms"),
                    None => "retry later".to_owned(),
                },
            );
        }
        _ => return None,
    };
    Some(text.to_owned())
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
        assert_eq!(
            server_url("a:1, https://b:2"),
            "http://a:1,https://b:2",
            "several servers, each with its scheme"
        );
    }
}
