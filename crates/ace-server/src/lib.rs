//! `ace-server` (layer L5): configuration, the HTTP API and `run(listener, config, shutdown)`.
