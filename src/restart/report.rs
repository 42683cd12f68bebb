//! What `restart` says: the one report document (`--json`), the readings of its watch, and the
//! exit codes, documented here once (the help text and the README repeat them).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ncp::cluster_status::{Diagnosis, RoleStatus};
use crate::ncp::precheck::Precheck;

/// The restart is over: every node up and green, and a fresh precheck says ready (`--dry-run`:
/// it would start).
pub(crate) const EXIT_DONE: u8 = 0;
/// Nothing started: the precheck says not ready, NCP reports the cluster changing, or NCP
/// refused the restart.
pub(crate) const EXIT_NO: u8 = 1;
/// Nothing started: no decision could be made (flags, config, keys, auth, network, rate limit),
/// or no confirmation.
pub(crate) const EXIT_CANNOT: u8 = 2;
/// Unknown: no restart was seen running within `--start-grace` (after a lost answer, NCP may or
/// may not have started it).
pub(crate) const EXIT_UNKNOWN: u8 = 3;
/// `--timeout` ended the watch: the restart may still be running at NCP.
pub(crate) const EXIT_TIMEOUT: u8 = 4;

/// One precheck, as the report shows it.
#[derive(Debug, Serialize)]
pub(crate) struct PrecheckView {
    /// `ready`, `not_ready`, `api_error`, `timeout`, ...
    pub verdict: &'static str,
    /// As `cdss_precheck_last_error_code`.
    pub code: i64,
    /// The CDSS or gateway message, or what went wrong.
    pub message: String,
    /// NCP's request id.
    pub request_id: Option<String>,
}

impl PrecheckView {
    pub(crate) fn of(p: &Precheck) -> Self {
        Self {
            verdict: p.outcome.verdict(),
            code: p.outcome.error_code(),
            message: p.outcome.message(),
            request_id: p.meta.request_id.clone(),
        }
    }
}

/// One progress reading.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Reading {
    /// Seconds since the watch began.
    pub elapsed_seconds: u64,
    /// Brokers up, of `brokers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers_up: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeepers_up: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeepers: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeeper_status: Option<String>,
    /// Every node that is not green, e.g. `broker kafka-2 orange`.
    pub not_green: Vec<String>,
    /// True when every node of every role NCP reported is up and green.
    pub all_green: bool,
    /// Why there is no reading this time (the call failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_green(s: Option<&str>) -> bool {
    s.is_some_and(|s| s.eq_ignore_ascii_case("green"))
}

/// Whether NCP said anything about a role.
fn said(r: &RoleStatus) -> bool {
    r.colour.is_some() || r.up.is_some() || !r.nodes.is_empty()
}

/// Whether a role NCP reported is up and green (a role it said nothing about is no evidence).
fn role_green(r: &RoleStatus) -> bool {
    !said(r)
        || (is_green(r.colour.as_deref())
            && r.up == r.total
            && r.nodes.iter().all(|n| is_green(n.status.as_deref())))
}

impl Reading {
    /// A reading of `status` at `elapsed`.
    pub(crate) fn of(status: &Diagnosis, elapsed: Duration) -> Self {
        let not_green = status
            .nodes()
            .filter(|(_, n, _)| !is_green(n.status.as_deref()));
        let not_green = not_green.map(|(role, n, _)| {
            let host = n.hostname.as_deref().unwrap_or("(no hostname)");
            format!(
                "{role} {host} {}",
                n.status.as_deref().unwrap_or("(no status)")
            )
        });
        let (b, z) = (&status.brokers, &status.zookeeper);
        Self {
            elapsed_seconds: elapsed.as_secs(),
            brokers_up: b.up,
            brokers: b.total,
            broker_status: b.colour.clone(),
            zookeepers_up: z.up,
            zookeepers: z.total,
            zookeeper_status: z.colour.clone(),
            not_green: not_green.collect(),
            all_green: said(b) && status.roles().iter().all(|(_, r)| role_green(r)),
            error: None,
        }
    }

    /// A failed reading at `elapsed`.
    pub(crate) fn failed(error: String, elapsed: Duration) -> Self {
        let none = Self::of(&Diagnosis::default(), elapsed);
        Self {
            all_green: false,
            error: Some(error),
            ..none
        }
    }

    /// True when this reading says the same as `other` (the time aside).
    pub(crate) fn same(&self, other: &Reading) -> bool {
        Self {
            elapsed_seconds: 0,
            ..self.clone()
        } == Self {
            elapsed_seconds: 0,
            ..other.clone()
        }
    }

    /// The progress line: brokers and ZooKeeper up of total with their colours, the nodes that are
    /// not green, the time elapsed.
    pub(crate) fn line(&self) -> String {
        let t = self.elapsed_seconds;
        let clock = format!("{}:{:02}", t / 60, t % 60);
        if let Some(e) = &self.error {
            return format!("{clock} no reading: {e}");
        }
        let n = |v: Option<i64>| v.map_or("?".into(), |v| v.to_string());
        let colour = |c: &Option<String>| c.clone().unwrap_or_else(|| "?".into());
        let mut line = format!(
            "{clock} brokers {}/{} {}, zookeeper {}/{} {}",
            n(self.brokers_up),
            n(self.brokers),
            colour(&self.broker_status),
            n(self.zookeepers_up),
            n(self.zookeepers),
            colour(&self.zookeeper_status),
        );
        if !self.not_green.is_empty() {
            line.push_str(&format!("; not green: {}", self.not_green.join(", ")));
        }
        line
    }
}

/// The whole report, on stdout with `--json` whatever happens.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    /// The cluster named.
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_group_instance_no: Option<u64>,
    /// The account whose keys signed the calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The gate's decision: `go`, `no_go`, `changing`, `unknown` (absent with `--watch-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::outcome::Decision>,
    /// The gate's precheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precheck: Option<PrecheckView>,
    /// `true`, `false`, or `"unknown"` (the answer to `rollingRestart` was lost and the watch
    /// saw no restart run).
    pub started: Value,
    /// What the `rollingRestart` call got: `accepted`, `refused`, `not_sent`, `lost`, or
    /// absent when it was not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_answer: Option<String>,
    /// NCP's request ids, in the order of the calls (`operation: id`).
    pub request_ids: Vec<String>,
    /// Every progress reading of the watch.
    pub timeline: Vec<Reading>,
    /// The precheck that ended the watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_precheck: Option<PrecheckView>,
    /// `done`, `would_start`, `not_started`, `unknown`, `timeout`, `interrupted`.
    pub result: &'static str,
    /// What happened, in a sentence.
    pub message: String,
    /// NCP calls made, by operation (they count against the account's quota).
    pub api_calls: std::collections::BTreeMap<&'static str, u64>,
    /// The process exit code.
    pub exit_code: u8,
}

impl Report {
    /// Adds the calls `clients` made to `api_calls`.
    pub(crate) fn count(&mut self, clients: &crate::ncp::client::Clients) {
        for (_, operation, _, n) in clients.spent() {
            *self.api_calls.entry(operation.as_str()).or_default() += n;
        }
    }

    /// Ends the report: its result, message and exit code.
    pub(crate) fn end(&mut self, result: &'static str, code: u8, message: String) -> u8 {
        self.result = result;
        self.exit_code = code;
        self.message = message;
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ncp::cluster_status::NodeStatus;

    fn role(up: i64, colour: &str, nodes: &[&str]) -> RoleStatus {
        RoleStatus {
            up: Some(up),
            total: Some(nodes.len() as i64),
            colour: Some(colour.into()),
            nodes: (nodes.iter().enumerate())
                .map(|(i, s)| NodeStatus {
                    hostname: Some(format!("n-{i}")),
                    status: Some(s.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn green_means_every_reported_node_up_and_green() {
        let mut d = Diagnosis {
            brokers: role(3, "green", &["green", "GREEN", "green"]),
            zookeeper: role(3, "green", &["green", "green", "green"]),
            cmak: Some("red".into()),
        };
        let r = Reading::of(&d, Duration::from_secs(75));
        assert!(r.all_green && r.not_green.is_empty(), "{r:?}");
        assert_eq!(r.line(), "1:15 brokers 3/3 green, zookeeper 3/3 green");
        d.brokers = role(2, "orange", &["green", "orange", "green"]);
        let r = Reading::of(&d, Duration::from_secs(5));
        assert!(!r.all_green);
        assert_eq!(r.not_green, ["broker n-1 orange"]);
        assert!(
            r.line().ends_with("; not green: broker n-1 orange"),
            "{}",
            r.line()
        );
        // Up of total short, or a node not green, is not over even if the colour says green.
        d.brokers = role(2, "green", &["green", "green", "green"]);
        assert!(!Reading::of(&d, Duration::ZERO).all_green);
        d.brokers = role(3, "green", &["green", "restarting", "green"]);
        assert!(!Reading::of(&d, Duration::ZERO).all_green);
        // A role NCP said nothing about is no evidence either way.
        d.brokers = role(3, "green", &["green", "green", "green"]);
        d.zookeeper = RoleStatus::default();
        assert!(Reading::of(&d, Duration::ZERO).all_green);
        d.brokers = RoleStatus::default();
        assert!(!Reading::of(&d, Duration::ZERO).all_green, "nothing said");
        let failed = Reading::failed("timeout".into(), Duration::from_secs(1));
        assert!(!failed.all_green && !failed.same(&Reading::of(&d, Duration::ZERO)));
        assert_eq!(failed.line(), "0:01 no reading: timeout");
    }
}
