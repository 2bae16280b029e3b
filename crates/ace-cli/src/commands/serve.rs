//! `ace-comms serve`: everything the server library leaves to a binary — read the config file
//! and the environment, apply the flags, install the tracing subscriber, bind the listener,
//! announce development mode, turn SIGTERM/SIGINT into the graceful shutdown of
//! `ace_server::App::serve`, and SIGHUP into a reload of the credentials and policies
//! (`ace_server::AppState::reload`: a refused reload is logged and the server keeps serving
//! with what it had). Exits 0 after a clean shutdown.

use std::io::Write;
use std::path::Path;

use ace_server::{App, AppState, Config};
use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use super::Outcome;
use crate::args::{LogFormat, ServeArgs};

/// Runs the server until SIGTERM or SIGINT, reloading on SIGHUP.
pub(crate) fn run(args: &ServeArgs, out: &mut dyn Write) -> Result<Outcome> {
    let config = config(args)?;
    install_tracing(args.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, out))?;
    Ok(Outcome::Success)
}

/// Defaults, the file, `ACE_*` variables, then the flags; validated last.
fn config(args: &ServeArgs) -> Result<Config> {
    let mut config = load_config(args.config.as_deref(), args.data.as_deref())?;
    if let Some(listen) = &args.listen {
        config.listen.clone_from(listen);
    }
    config.validate()?;
    Ok(config)
}

/// The server's configuration as `serve` reads it: defaults, the `file`, `ACE_*` variables, then
/// `--data`; not validated yet (the caller may apply more flags).
pub(crate) fn load_config(file: Option<&Path>, data: Option<&Path>) -> Result<Config> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?,
        ),
        None => None,
    };
    let mut config = Config::load(text.as_deref(), std::env::vars())?;
    if let Some(data) = data {
        config.data_dir = data.to_path_buf();
    }
    Ok(config)
}

/// Logs go to standard error (standard output carries the listening line for scripts).
fn install_tracing(format: LogFormat) -> Result<()> {
    let filter = std::env::var("ACE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).with_context(|| format!("log filter `{filter}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

async fn serve(config: Config, out: &mut dyn Write) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let app = App::open(&config).await?;
    if app.state().core().is_development() {
        development_banner();
    }
    // Installed before the listening line: from then on a SIGHUP reloads, never kills.
    let reloads = reload_on_hangup(app.state().clone());
    // the URL clients use: https when the listener speaks TLS
    // Registered before "listening" is printed: a SIGTERM from then on stops the server
    // gracefully (registered lazily, inside the serve loop, one could still kill it).
    let shutdown = shutdown_signal();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(
        out,
        "ace-comms listening on {scheme}://{addr} (data: {})",
        config.data_dir.display()
    )?;
    out.flush()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "serving");
    let served = app.serve(listener, shutdown).await;
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    served?;
    writeln!(out, "ace-comms stopped")?;
    Ok(())
}

fn development_banner() {
    eprintln!(
        "\n\
         ################################################################################\n\
         #  ACE::COMMS DEVELOPMENT MODE — AUTHENTICATION IS OFF                         #\n\
         #  Every caller acts as DEVELOPMENT-MODE-UNAUTHENTICATED with every right.     #\n\
         #  RBAC and Rego are off; EHI holds and the ledger stay on. Never expose it.   #\n\
         ################################################################################\n"
    );
    tracing::warn!(
        principal = ace_core::DEVELOPMENT_PRINCIPAL_ID,
        "development mode: authentication and authorization (RBAC, Rego) are pass-throughs; EHI holds and the ledger stay on"
    );
}

/// Reloads the credentials and policies on every SIGHUP, as the system principal, until the
/// returned task is aborted; `None` where SIGHUP does not exist or cannot be handled (said in
/// the log). The handler is registered before this returns.
fn reload_on_hangup(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::warn!(error = %err, "SIGHUP handler unavailable; reload over HTTP only");
                return None;
            }
        };
        Some(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading credentials and policies");
                // A refusal is logged and counted by `reload`; the old state keeps serving.
                let _ = state.reload(ace_core::SYSTEM_PRINCIPAL_ID).await;
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        None
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). On Unix both handlers are registered when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
            .inspect_err(|err| {
                tracing::warn!(error = %err, "SIGTERM handler unavailable; Ctrl-C only");
            })
            .ok()
    };
    async move {
        #[cfg(unix)]
        match handlers {
            Some((mut term, mut interrupt)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    }
}
