//! Command-line flags (clap), named like the Prometheus exporters our users already run.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Default `--web.listen-address`. 9787: in the exporter range 9100–9999 (see README, "Port").
pub const DEFAULT_LISTEN_ADDRESS: &str = ":9787";

/// Prometheus exporter for NAVER Cloud CDSS (managed Kafka) rolling-restart prechecks.
///
/// Runs rollingRestartPreCheck on a schedule for the clusters in --config.file and serves the
/// results on /metrics. Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad flags, config or
/// credentials.
#[derive(Debug, Parser)]
#[command(name = "cdss-precheck-exporter", version, about, long_about)]
pub struct Cli {
    /// Path to the YAML configuration file.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "config.yaml"
    )]
    pub config_file: PathBuf,

    /// Validate the configuration file, print the result and exit (0 valid, 2 invalid).
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Address to listen on for /metrics and the other endpoints (":PORT" means every interface).
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,

    /// Start an embedded simulated NCP gateway with demo clusters and credentials, and export
    /// from it. Ignores --config.file. No NCP account needed.
    #[arg(long)]
    pub demo: bool,

    /// Only log messages with the given severity or above (RUST_LOG, if set, overrides this).
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages (always to stderr).
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

/// `--log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Every precheck.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The `tracing` level name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn prometheus_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "x",
            "--config.file=/etc/c.yaml",
            "--web.listen-address",
            "127.0.0.1:1234",
            "--log.level=debug",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.config_file, PathBuf::from("/etc/c.yaml"));
        assert_eq!(cli.listen_address, "127.0.0.1:1234");
        assert_eq!(cli.log_level, LogLevel::Debug);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["x", "--log.level=loud"]).is_err());
    }
}
