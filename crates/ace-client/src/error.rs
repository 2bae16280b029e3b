//! [`ClientError`]: every way a call of the SDK fails — the server refused it (its error body and
//! HTTP status), the connection failed, an answer did not decode, or the WebSocket was closed.

use std::time::Duration;

use ace_envelope::api::ws::close;
use ace_envelope::{ErrorBody, ErrorCode};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error: its HTTP status (for a WebSocket `error` frame, the
    /// status of its code) and its error body.
    #[error("{} (HTTP {status}): {}", body.error.code, body.error.message)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's error body (`contracts/comms/errors.schema.json`).
        body: ErrorBody,
    },
    /// The server could not be reached, or the connection broke.
    #[error("{what}: {source}")]
    Transport {
        /// What was being done (`POST http://…/api/v1/messages`, `connect ws://…/ws`).
        what: String,
        /// The transport's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// TLS failed: a certificate or key given to the client is unreadable or not PEM, or the
    /// handshake with the server failed (its certificate is not trusted or not for this host,
    /// or it refused this client's certificate or the lack of one).
    #[error("{what}: {reason}")]
    Tls {
        /// What was being done (`read the TLS CA file \`ca.pem\``, `GET https://…/health`).
        what: String,
        /// Why it failed, with what to check.
        reason: String,
    },
    /// An answer arrived but is not what the API promises.
    #[error("could not decode the answer to {what}: {source}")]
    Decode {
        /// What was answered (`GET …/streams/ACE`, a WebSocket frame).
        what: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The server URL given to [`Client::new`](crate::Client::new) is unusable.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The server closed the WebSocket connection (see [`ClientError::close_code`]).
    #[error("the server closed the WebSocket with {code} ({}): {reason}", close_meaning(*code))]
    Closed {
        /// The close code (1008 origin refused, 1009 too big, 4008 slow consumer, 1001 going
        /// away, 1011 keepalive missed); 1005 when the server sent none.
        code: u16,
        /// The reason the server gave.
        reason: String,
    },
    /// The server held the message for a human's approval (202 `pending_approval`): nothing is
    /// stored until an approver approves it (`GET /api/v1/approvals`).
    #[error("message {} is held for approval {}", .0.id, .0.approval_id)]
    Held(ace_envelope::api::http::Pending),
    /// No answer (or reply) arrived in time.
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}

impl ClientError {
    /// The server's error code, for [`ClientError::Api`] (`PENDING_APPROVAL` for
    /// [`ClientError::Held`]).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            ClientError::Held(_) => Some(ErrorCode::PendingApproval),
            _ => None,
        }
    }

    /// The HTTP status, for [`ClientError::Api`] (202 for [`ClientError::Held`]).
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Held(_) => Some(202),
            _ => None,
        }
    }

    /// The WebSocket close code, for [`ClientError::Closed`].
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ClientError::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the server cut the connection because this client read too slowly (4008).
    pub fn is_slow_consumer(&self) -> bool {
        self.close_code() == Some(close::SLOW_CONSUMER)
    }

    /// The approval holding the message, for [`ClientError::Held`].
    pub fn held(&self) -> Option<&ace_envelope::api::http::Pending> {
        match self {
            ClientError::Held(pending) => Some(pending),
            _ => None,
        }
    }

    /// An API error from an error body, with the HTTP status of its code.
    pub(crate) fn api(body: ErrorBody) -> Self {
        ClientError::Api {
            status: body.error.code.http_status(),
            body,
        }
    }

    /// A failed exchange: [`ClientError::Tls`] when a TLS error lies in `source`'s chain (a
    /// refused handshake), else [`ClientError::Transport`].
    pub(crate) fn transport(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let what = what.into();
        match tls_failure(&source) {
            Some(reason) => ClientError::Tls { what, reason },
            None => ClientError::Transport {
                what,
                source: Box::new(source),
            },
        }
    }
}

/// The rustls error somewhere in `err`'s chain, explained: what failed and what to check. An
/// I/O error carries it as its inner error, perhaps inside another I/O error (`source()` skips
/// an inner error), so an I/O error is followed into its inner error.
fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(explain(tls));
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// What a TLS error means to the person running the client.
fn explain(err: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError, Error};
    let hint = match err {
        Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => {
            "the server's certificate is not signed by a trusted CA: give the CA that signed it \
             (tls_ca, --tls-ca)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not for this host: use a host name it names",
        Error::InvalidCertificate(_) => "the server's certificate was refused",
        Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown,
        ) => {
            "the server refused the handshake: it requires a client certificate signed by a CA \
             it trusts (tls_identity, --tls-cert and --tls-key)"
        }
        _ => "the TLS handshake failed",
    };
    format!("TLS: {hint} ({err})")
}

/// What a close code of the `/ws` protocol means.
fn close_meaning(code: u16) -> &'static str {
    match code {
        close::POLICY => "policy: the Origin was refused",
        close::TOO_BIG => "a message was larger than the server's limit",
        close::SLOW_CONSUMER => "slow consumer: the connection's queue overflowed",
        close::GOING_AWAY => "the server is shutting down",
        close::KEEPALIVE => "a keepalive went unanswered",
        close::PROTOCOL_ERROR => "the client broke the WebSocket protocol",
        close::INVALID_DATA => "a text message was not valid UTF-8",
        close::CREDENTIALS => "the credentials expired or were revoked: connect again",
        1000 => "normal closure",
        _ => "unexpected close",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_api_error_when_displayed_then_code_status_and_message_show() {
        let err = ClientError::api(ErrorBody::new(
            ErrorCode::NotFound,
            "stream \"NOPE\" not found",
        ));
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some(ErrorCode::NotFound));
        assert!(
            err.to_string()
                .starts_with("NOT_FOUND (HTTP 404): stream \"NOPE\"")
        );
    }

    #[test]
    fn given_a_slow_consumer_close_when_inspected_then_it_is_recognised() {
        let err = ClientError::Closed {
            code: close::SLOW_CONSUMER,
            reason: "queue full".into(),
        };
        assert!(err.is_slow_consumer());
        assert!(err.to_string().contains("slow consumer"));
    }
}
