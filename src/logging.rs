//! Logging setup: `tracing` to stderr as logfmt or JSON.
//!
//! `--log.level` applies to this crate; dependencies log at `warn` and above so `debug` stays
//! readable. `RUST_LOG`, when set, replaces both.

use clap::ValueEnum as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::{LogFormat, LogLevel};

/// Installs the global subscriber. Call once, from `main`.
pub fn init(level: LogLevel, format: LogFormat) {
    // The flag's own spelling (`debug`) is the `tracing` level's name.
    let level = level.to_possible_value().map(|v| v.get_name().to_owned());
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(format!(
                "warn,cdss_precheck_exporter={}",
                level.unwrap_or_default()
            ))
        });
    let json = format == LogFormat::Json;
    let stderr = std::io::stderr;
    tracing_subscriber::registry()
        .with(filter)
        .with((!json).then(|| tracing_logfmt::builder().layer().with_writer(stderr)))
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(stderr)
        }))
        .init();
}
