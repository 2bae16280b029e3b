//! What every handler needs from a request besides its route: the [`Ctx`] extractor (transport,
//! peer address and raw credentials for the core), the body read under the size limit and the
//! total deadline ([`Deadline`]: the whole body must arrive within `limits.body_timeout_ms` of
//! the headers, however it trickles), the media type, and JSON parsing that reports line and
//! column.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ace_core::{Credentials, RequestContext};
use ace_envelope::ErrorCode;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::ApiError;
use crate::tls::PeerCertificate;

/// The request as the core sees it: `http`, the peer, the credentials presented
/// (`Authorization: Bearer …`, else `X-ACE-API-Key`; the older `X-API-Key` is not read, so a
/// client still sending it is told which header to use), and the client certificate the TLS
/// handshake verified (the [`PeerCertificate`] extension the listener puts on every request
/// of the connection) — none of it verified yet.
#[derive(Debug, Clone)]
pub(crate) struct Ctx(pub(crate) RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut ctx = RequestContext::new("http");
        ctx.remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        ctx.credentials = credentials(&parts.headers);
        ctx.peer_certificate = parts
            .extensions
            .get::<PeerCertificate>()
            .map(|cert| cert.0.clone());
        Ok(Ctx(ctx))
    }
}

/// The header of API keys, lower-cased as `http` wants it (`ace_policy::API_KEY_HEADER`).
const API_KEY: &str = "x-ace-api-key";

fn credentials(headers: &HeaderMap) -> Credentials {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = text(header::AUTHORIZATION).and_then(|v| {
        // The scheme is case-insensitive (RFC 9110 11.1).
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    if let Some(token) = bearer {
        return Credentials::Bearer(token.to_owned());
    }
    match text(header::HeaderName::from_static(API_KEY)) {
        Some(key) => Credentials::ApiKey(key.trim().to_owned()),
        None => Credentials::None,
    }
}

/// The body, or 413 when it passed `limit` (announced or streamed), 408 when it did not arrive
/// by its [`Deadline`], or 400 when it broke off.
pub(crate) fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge { limit };
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
        while let Some(current) = source {
            if let Some(late) = current.downcast_ref::<BodyLate>() {
                return ApiError::BodyTimeout {
                    limit_ms: late.limit_ms,
                };
            }
            source = current.source();
        }
        ApiError::Body(rejection.body_text())
    })
}

/// The error of a body that did not arrive whole by its deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within limits.body_timeout_ms ({limit_ms} ms)")]
pub(crate) struct BodyLate {
    limit_ms: u64,
}

/// A request body that must arrive whole within one deadline, set when the request's headers
/// were read. Unlike a timeout per chunk, a client sending one byte at a time cannot hold the
/// request open longer than `limit`.
pub(crate) struct Deadline<B> {
    inner: B,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit_ms: u64,
}

impl<B> Deadline<B> {
    /// `inner`, due within `limit` from now.
    pub(crate) fn new(inner: B, limit: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let late = BodyLate {
                limit_ms: self.limit_ms,
            };
            return Poll::Ready(Some(Err(Box::new(late))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The `Content-Length` a request announces, if it is a number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The media type of the body: lower case, without parameters; empty when absent.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the request's `Accept` names `media` (exactly, case-insensitively, parameters and
/// other ranges aside); `*/*` and absence do not count, so the default answer stays JSON.
pub(crate) fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|range| range.trim().eq_ignore_ascii_case(media))
}

/// A JSON request body: read under the body limit, then parsed by [`json`]; the rejection is
/// the error answer.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        let bytes = body(
            Bytes::from_request(request, state).await,
            state.limits.max_body_bytes,
        )?;
        let what = std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("body");
        json(&headers, &bytes, what).map(JsonBody)
    }
}

/// A JSON request body of type `T` (`what` names it in errors): 415 unless the content type is
/// `application/json`, 400 `INVALID_JSON` with line and column when it does not parse.
pub(crate) fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
    what: &'static str,
) -> Result<T, ApiError> {
    let media = media_type(headers);
    if media != "application/json" {
        return Err(ApiError::UnsupportedMediaType {
            got: media,
            accepted: "application/json",
        });
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::json(&e, what, ErrorCode::InvalidJson))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn given_accept_headers_when_asked_for_a_media_type_then_only_a_named_range_counts() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().unwrap());
            headers
        };
        let ce = "application/cloudevents+json";
        assert!(accepts(&with("application/cloudevents+json"), ce));
        assert!(accepts(
            &with("text/html, Application/CloudEvents+JSON;q=0.9"),
            ce
        ));
        assert!(!accepts(&with("*/*"), ce));
        assert!(!accepts(&with("application/json"), ce));
        assert!(!accepts(&HeaderMap::new(), ce));
    }

    #[test]
    fn given_a_bearer_header_when_read_then_the_token_is_taken() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(credentials(&headers), Credentials::Bearer("abc".into()));
    }

    #[test]
    fn given_api_key_headers_when_read_then_only_the_issue_5_header_counts() {
        assert!(API_KEY.eq_ignore_ascii_case(ace_policy::API_KEY_HEADER));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("old"));
        assert_eq!(credentials(&headers), Credentials::None);
        headers.insert("X-ACE-API-Key", HeaderValue::from_static("k1"));
        assert_eq!(credentials(&headers), Credentials::ApiKey("k1".into()));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer t"));
        assert_eq!(credentials(&headers), Credentials::Bearer("t".into()));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTpw"),
        );
        assert_eq!(credentials(&headers), Credentials::ApiKey("k1".into()));
    }

    #[test]
    fn given_a_content_type_with_parameters_when_read_then_only_the_media_type_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(media_type(&headers), "application/json");
    }

    #[test]
    fn given_broken_json_when_parsed_then_line_and_column_are_reported() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let err = json::<serde_json::Value>(&headers, b"{\n  \"a\": ,\n}", "body").unwrap_err();
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::InvalidJson);
        assert_eq!(body.error.details["line"], 2);
    }
}
