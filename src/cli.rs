//! Command-line flags (clap), named like the Prometheus exporters our users already run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code for bad flags, config or credentials.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for other failures.
pub const EXIT_FAILURE: u8 = 1;

/// Default `--web.listen-address`. 9787: in the exporter range 9100–9999 (see README, "Port").
pub(crate) const DEFAULT_LISTEN_ADDRESS: &str = ":9787";

/// Environment variables for `--web.listen-address` and `--web.config.file`, read by the exporter
/// and by `healthcheck` alike: in a container, set them instead of the flags and the image's
/// `HEALTHCHECK` probes what the exporter serves.
const LISTEN_ADDRESS_ENV: &str = "CDSS_WEB_LISTEN_ADDRESS";
const WEB_CONFIG_ENV: &str = "CDSS_WEB_CONFIG_FILE";

/// Prometheus exporter for NAVER Cloud CDSS (managed Kafka) rolling-restart prechecks.
///
/// Without a command: runs rollingRestartPreCheck on a schedule for the clusters in --config.file
/// and serves the results on /metrics. Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad
/// flags, config or credentials. `check` asks NCP now, for maintenance pipelines.
#[derive(Debug, Parser)]
#[command(name = "cdss-precheck-exporter", version, about, long_about)]
pub struct Cli {
    /// What to do; without one, serve metrics.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path to the YAML configuration file.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "config.yaml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Validate the configuration file, print the result and exit (0 valid, 2 invalid).
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Re-read the config file this often and reload it when its content changed (e.g. 30s).
    /// Off by default; SIGHUP and POST /-/reload always work.
    #[arg(long = "config.auto-reload-interval", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub auto_reload_interval: Option<Duration>,

    /// Address to listen on for /metrics and the other endpoints (":PORT" means every interface).
    #[arg(long = "web.listen-address", value_name = "ADDR", env = LISTEN_ADDRESS_ENV, default_value = DEFAULT_LISTEN_ADDRESS, value_parser = listen_address)]
    pub listen_address: String,

    /// TLS and basic auth for the endpoints, in the Prometheus exporter-toolkit format
    /// (tls_server_config, basic_auth_users). Re-read when it changes. See README.
    #[arg(long = "web.config.file", value_name = "PATH", env = WEB_CONFIG_ENV)]
    pub web_config_file: Option<PathBuf>,

    /// Start an embedded simulated NCP gateway with demo clusters and credentials, and export
    /// from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against
    /// the demo's gateway, started in the same process.
    #[arg(long, global = true)]
    pub demo: bool,

    /// Only log messages with the given severity or above (RUST_LOG, if set, overrides this).
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true)]
    pub log_level: LogLevel,

    /// Output format of log messages (always to stderr).
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Precheck clusters from the config NOW and answer go / no-go (for maintenance pipelines).
    ///
    /// Never uses a cached result. Prints a table (or --json) on stdout; logs and progress go to
    /// stderr.
    ///
    /// Exit codes:
    ///   0    every named cluster is ready
    ///   1    at least one is not ready: `result` false, or a CDSS API error that says no
    ///        (e.g. code 3, no such cluster); or NCP reports one changing (a restart or
    ///        another change is running: decision `changing`, never go; --wait keeps waiting)
    ///   2    no decision could be made: bad flags or config, missing credentials, auth failure,
    ///        rate limit, network error or timeout
    ///   130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Restart a cluster's nodes one at a time, only when its precheck says ready; then watch.
    ///
    /// Prechecks the cluster now and reads its status; starts nothing unless the precheck says
    /// ready and NCP does not report the cluster changing. Asks before starting (on a terminal),
    /// or takes --yes. Sends rollingRestart exactly once, never again, even when its answer is
    /// lost. Then reads rollingRestartProgressCheck every --every until every broker and
    /// ZooKeeper node is up and green after the restart was seen running, and a fresh precheck
    /// says ready. Progress goes to stderr; the result (or --json) to stdout. Ctrl-C or SIGTERM
    /// stops the watch only: NCP's restart goes on.
    ///
    /// Exit codes:
    ///   0    the restart is over and the precheck says ready (--dry-run: it would start)
    ///   1    nothing started: the precheck says not ready, NCP reports the cluster changing,
    ///        or NCP refused the restart
    ///   2    nothing started: no decision could be made (flags, config, keys, auth, network,
    ///        rate limit), or not confirmed
    ///   3    unknown: no restart seen running within --start-grace (after a lost answer NCP
    ///        may or may not have started it; it was not sent again)
    ///   4    --timeout ended the watch: the restart may still be running at NCP
    ///   130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
    #[command(verbatim_doc_comment)]
    Restart(RestartArgs),
    /// Probe this exporter's own /-/healthy over loopback: exit 0 healthy, 1 not (with the reason
    /// on stderr). For container health checks in an image without a shell.
    ///
    /// Give it the exporter's --web.listen-address and --web.config.file (or the same
    /// environment variables): it speaks plain HTTP or TLS as that file says, without verifying
    /// the exporter's own certificate. The file holds bcrypt hashes only, so basic auth needs
    /// --username and --password-file.
    Healthcheck(HealthcheckArgs),

    /// Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell).
    ///
    /// For example: `cdss-precheck-exporter completions bash > ~/.local/share/bash-completion/completions/cdss-precheck-exporter`.
    /// The Debian package installs the bash, zsh and fish scripts.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print a man page (roff) on stdout: `cdss-precheck-exporter man | man -l -`.
    Man {
        /// A command's page instead of the program's (e.g. `check`).
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

/// `check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A cluster name from the config; repeat for several.
    #[arg(
        long = "cluster",
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub clusters: Vec<String>,

    /// Every cluster in the config.
    #[arg(long)]
    pub all: bool,

    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Poll until every named cluster is ready, for at most this long (e.g. 15m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,

    /// Time between polls with --wait (a 429's Retry-After, if longer, wins).
    #[arg(long, value_name = "DURATION", value_parser = parse_every, default_value = "30s", requires = "wait")]
    pub every: Duration,
}

/// `restart` flags (a flag given twice: the last one wins).
#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct RestartArgs {
    /// The cluster to restart, by its name in the config (or found by its discovery blocks).
    #[arg(long, value_name = "NAME")]
    pub cluster: String,

    /// Sign every call with this account's keys (`default` is `credentials:`, others are in
    /// `accounts:`) instead of the cluster's: a key with write access kept apart from the
    /// exporter's read-only one.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// Start without asking (required without a terminal).
    #[arg(long)]
    pub yes: bool,

    /// Do everything up to the start, say what would be sent, and exit 0 when it would start.
    #[arg(long = "dry-run", conflicts_with_all = ["watch_only", "yes"])]
    pub dry_run: bool,

    /// Start nothing: watch a restart that is already running (after Ctrl-C, or one started
    /// in NCP's console) until it is over.
    #[arg(long = "watch-only", conflicts_with = "yes")]
    pub watch_only: bool,

    /// Print one JSON report on stdout instead of a line.
    #[arg(long)]
    pub json: bool,

    /// Time between two progress readings.
    #[arg(long, value_name = "DURATION", value_parser = parse_every, default_value = "15s")]
    pub every: Duration,

    /// End the watch after this long (the restart may still be running at NCP).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60m")]
    pub timeout: Duration,

    /// How long to wait for the restart to show (NCP may start it a little after accepting it).
    #[arg(long = "start-grace", value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "5m")]
    pub start_grace: Duration,
}

/// `healthcheck` flags.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The exporter's --web.listen-address (":PORT" and "0.0.0.0:PORT" are probed on loopback).
    #[arg(long = "web.listen-address", value_name = "ADDR", env = LISTEN_ADDRESS_ENV, default_value = DEFAULT_LISTEN_ADDRESS, value_parser = listen_address)]
    pub listen_address: String,

    /// The exporter's --web.config.file: whether to speak TLS, and whether basic auth is needed.
    #[arg(long = "web.config.file", value_name = "PATH", env = WEB_CONFIG_ENV)]
    pub web_config_file: Option<PathBuf>,

    /// Basic auth user name (one of the web config's basic_auth_users).
    #[arg(
        long,
        value_name = "NAME",
        env = "CDSS_HEALTHCHECK_USERNAME",
        requires = "password_file"
    )]
    pub username: Option<String>,

    /// File holding that user's password (a trailing line end is ignored).
    #[arg(
        long = "password-file",
        value_name = "PATH",
        env = "CDSS_HEALTHCHECK_PASSWORD_FILE",
        requires = "username"
    )]
    pub password_file: Option<PathBuf>,
}

/// Minimum `--every`: polling faster only spends API quota.
pub(crate) const MIN_EVERY: Duration = Duration::from_secs(1);

fn parse_every(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    let too_short = || format!("must be at least {}", humantime::format_duration(MIN_EVERY));
    (d >= MIN_EVERY).then_some(d).ok_or_else(too_short)
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

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// `--web.listen-address`: `:PORT`, or `HOST:PORT` (`[::1]:PORT` for IPv6). A value that cannot
/// be an address is a bad flag (exit 2); one that cannot be bound is a runtime failure (exit 1).
fn listen_address(s: &str) -> Result<String, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not an address like :9787 or 127.0.0.1:9787"))?;
    port.parse::<u16>()
        .map_err(|_| format!("{s:?}: {port:?} is not a port number (0-65535)"))?;
    if host.contains(char::is_whitespace) || (host.contains(':') && !host.starts_with('[')) {
        return Err(format!(
            "{s:?} is not an address like :9787, 127.0.0.1:9787 or [::1]:9787"
        ));
    }
    Ok(s.to_string())
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

    #[test]
    fn check_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "check",
            "--cluster",
            "a",
            "--cluster",
            "b",
            "--config.file",
            "c.yaml",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check")
        };
        assert_eq!(args.clusters, ["a", "b"]);
        assert_eq!(cli.config_file, PathBuf::from("c.yaml"));
        assert!(
            Cli::try_parse_from(["x", "check"]).is_err(),
            "needs --cluster or --all"
        );
        assert!(Cli::try_parse_from(["x", "check", "--all", "--cluster", "a"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "check", "--all", "--every", "5s"]).is_err(),
            "--every needs --wait"
        );
        assert!(
            Cli::try_parse_from(["x", "check", "--all", "--wait", "1m", "--every", "10ms"])
                .is_err()
        );
        let cli = Cli::try_parse_from(["x", "check", "--all", "--wait", "15m", "--json"]).unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check")
        };
        assert_eq!(args.wait, Some(Duration::from_secs(900)));
        assert_eq!(args.every, Duration::from_secs(30));
        assert!(args.json && args.all);
    }
}
