//! What every client verb shares: where the server is (`--server` / `ACE_SERVER`), who is
//! asking (`--token` / `ACE_TOKEN`, `--api-key` / `ACE_API_KEY`), how TLS is trusted and who
//! the client is to it (`--tls-ca`, `--tls-cert`, `--tls-key` and their `ACE_TLS_*`), and the
//! value parsers of durations and snake_case policy words, so each noun's file stays data only.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::de::DeserializeOwned;

/// Where the server listens and the credentials to present, for every verb that talks to one.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the ace-comms server; several, comma separated, are tried in turn when one
    /// cannot be reached (servers sharing one NATS engine).
    #[arg(
        long,
        global = true,
        env = "ACE_SERVER",
        default_value = "http://127.0.0.1:8500",
        value_name = "URL"
    )]
    pub(crate) server: String,
    /// A JWT sent as `Authorization: Bearer <token>`.
    #[arg(
        long,
        global = true,
        env = "ACE_TOKEN",
        hide_env_values = true,
        value_name = "JWT",
        conflicts_with = "api_key"
    )]
    pub(crate) token: Option<String>,
    /// An API key sent as `X-ACE-API-Key`.
    #[arg(
        long,
        global = true,
        env = "ACE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,
    /// A CA certificate (PEM) to trust for an https:// server, beside the public roots.
    #[arg(long, global = true, env = "ACE_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// A client certificate (PEM, leaf first) for mutual TLS; needs --tls-key.
    #[arg(
        long,
        global = true,
        env = "ACE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        global = true,
        env = "ACE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
}

/// A duration written `500ms`, `5s`, `2m`, `1h` or `1h30m` (humantime).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 5s, 2m: {e}"))
}

/// A policy word (`workqueue`, `per_key`, …) read the way the wire reads it, so the CLI accepts
/// exactly the words the server does.
pub(crate) fn parse_word<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn given_the_whole_command_line_when_clap_checks_it_then_no_definition_conflicts() {
        super::super::Cli::command().debug_assert();
    }

    #[test]
    fn given_durations_and_words_when_parsed_then_they_read_like_the_wire() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        let policy: ace_envelope::api::http::RetentionPolicy = parse_word("workqueue").unwrap();
        assert_eq!(policy, ace_envelope::api::http::RetentionPolicy::Workqueue);
        let refused = parse_word::<ace_envelope::api::http::RetentionPolicy>("forever");
        assert!(
            refused.unwrap_err().contains("interest"),
            "names the accepted words"
        );
    }
}
