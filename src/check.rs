//! `cdss-precheck-exporter check`: ask NCP now whether clusters may be rolling-restarted, and
//! answer with an exit code a pipeline can branch on.
//!
//! Owns target selection, polling (`--wait`/`--every`, honouring `Retry-After`), the aggregate
//! decision, and the table/JSON report. Every precheck goes through the exporter's own runner
//! (its concurrency cap and single flight), client and `Outcome`; nothing is cached. A cluster
//! NCP reports changing (as the state derives it from the listing, the precheck and
//! `getClusterStatus`) is decided `changing`, whatever its precheck said. Results go to stdout,
//! progress to stderr.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;

use crate::cli::CheckArgs;
use crate::config::Config;
use crate::gate::DiagnosisView;
use crate::model::Cluster;
use crate::ncp::client::Clients;
use crate::ncp::precheck::Precheck;
use crate::outcome::{Decision, Outcome, clock_skew_hint};
use crate::scheduler::Runner;
use crate::state::State;

/// Picks the clusters `args` names, in the order named. A name that is not a static cluster is
/// looked up through the config's discovery blocks (one listing each); an unknown name is an
/// error that lists the known ones. `Err` says why, for stderr and the report.
pub(crate) async fn select(
    config: &Config,
    args: &CheckArgs,
    clients: &Clients,
) -> Result<Vec<Arc<Cluster>>, String> {
    let is_static = |n: &String| config.clusters.iter().any(|c| &c.name == n);
    let mut found = Vec::new();
    if args.all || !args.clusters.iter().all(is_static) {
        for block in &config.discovery {
            let listed = crate::discovery::list(clients, block)
                .await
                .map_err(|e| format!("discovery {} failed: {e}", block.label()))?;
            found.push((block, listed));
        }
    }
    let listed = found.iter().map(|(b, c)| (*b, c.as_slice()));
    let known = crate::plan::merge(&config.clusters, listed);
    if args.all {
        return Ok(known);
    }
    let mut picked: Vec<Arc<Cluster>> = Vec::new();
    for name in &args.clusters {
        let Some(c) = known.iter().find(|c| &c.name == name) else {
            let known: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
            let known = known.join(", ");
            return Err(format!("unknown cluster {name:?}; the config has: {known}"));
        };
        if !picked.iter().any(|p| p.name == c.name) {
            picked.push(c.clone());
        }
    }
    Ok(picked)
}

/// The aggregate: any no → no-go (a definite no, even if others could not be asked); else any
/// changing → changing (also a definite "not now"); else any unknown → unknown; else go.
pub(crate) fn aggregate(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    // Nothing asked is no decision.
    let rank = |d: &Decision| match d {
        Decision::Go => 0,
        Decision::Unknown => 1,
        Decision::Changing => 2,
        Decision::NoGo => 3,
    };
    let worst = decisions.into_iter().max_by_key(rank);
    worst.unwrap_or(Decision::Unknown)
}

/// Exit code for an aggregate decision.
pub(crate) fn exit_code(decision: Decision) -> u8 {
    match decision {
        Decision::Go => 0,
        Decision::NoGo | Decision::Changing => 1,
        Decision::Unknown => 2,
    }
}

/// A cluster's decision after a precheck that ended with `outcome`, and since when NCP reports
/// it changing (when it does), as the state has it.
fn cluster_decision(
    state: &State,
    name: &str,
    outcome: &Outcome,
) -> (Decision, Option<SystemTime>) {
    let since = state.get(name).and_then(|s| s.changing_since);
    (outcome.decision().unless_changing(since.is_some()), since)
}

/// One cluster's line in the report.
#[derive(Debug, Serialize)]
pub(crate) struct ClusterReport {
    /// Cluster name.
    pub cluster: String,
    /// Region label.
    pub region: String,
    /// CDSS cluster number.
    pub service_group_instance_no: u64,
    /// True only for a ready answer of a cluster NCP does not report changing.
    pub ready: bool,
    /// go / no_go / unknown / changing.
    pub decision: Decision,
    /// While NCP reports the cluster changing: since when this run saw it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changing_since: Option<String>,
    /// ready, not_ready, api_error, auth_error, rate_limited, timeout, ...
    pub verdict: &'static str,
    /// As `cdss_precheck_last_error_code`.
    pub code: i64,
    /// The CDSS or gateway message, or what went wrong.
    pub message: String,
    /// Precheck latency.
    pub latency_seconds: f64,
    /// NCP's request id.
    pub request_id: Option<String>,
    /// When the precheck finished (RFC 3339).
    pub checked_at: String,
    /// What `getClusterStatus` said, for a cluster that is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<DiagnosisView>,
}

/// The whole report (`--json`).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// True when every named cluster is ready.
    pub ready: bool,
    /// The aggregate decision.
    pub decision: Decision,
    /// The process exit code.
    pub exit_code: u8,
    /// Rounds of prechecks made (1 without --wait).
    pub attempts: u32,
    /// The last answer per cluster.
    pub clusters: Vec<ClusterReport>,
    /// Why no cluster could be asked at all (bad config, no keys, an unknown name, a failed
    /// listing, a signal); then `clusters` is empty and `decision` is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// The report of `clusters`' answers and their aggregate decision.
    fn new(clusters: Vec<ClusterReport>, attempts: u32, error: Option<String>) -> Self {
        let decision = aggregate(clusters.iter().map(|r| r.decision));
        Self {
            ready: decision == Decision::Go,
            decision,
            exit_code: exit_code(decision),
            attempts,
            clusters,
            error,
        }
    }
}

/// Runs `check` and returns its exit code: every failure to even ask is 2; Ctrl-C is 130,
/// SIGTERM 143. The report goes to stdout; with `--json`, stdout holds a report document
/// whatever happens (with `error` set when nothing could be asked).
pub(crate) async fn main(config_file: &Path, demo: bool, args: &CheckArgs) -> u8 {
    let asked = async {
        // The clients hold the keyring (and so keep its refreshers running); the demo's gateway
        // serves while `_sim` is held.
        let (config, clients, _sim) = crate::reload::load_command(config_file, demo).await?;
        let clusters = select(&config, args, &clients).await?;
        let state = Arc::new(State::new(&clusters));
        let runner = Runner::new(clusters.clone(), clients.clone(), state, config.concurrency);
        let runner = Arc::new(runner.without_logs());
        let listing = (&config, &clients);
        let (results, attempts) = poll(args, &runner, &clusters, listing).await;
        let skew = |(p, _): &(Precheck, _)| clock_skew_hint(&p.outcome, p.meta.clock_skew);
        if let Some(hint) = results.iter().find_map(skew) {
            eprintln!("check: authentication failed: {hint}");
        }
        Ok(report(&runner, &clusters, &results, attempts))
    };
    let report = tokio::select! {
        asked = asked => asked.unwrap_or_else(|error: String| {
            eprintln!("error: {error}");
            Report::new(Vec::new(), 0, Some(error))
        }),
        s = crate::shutdown::wait_for_signal() => {
            let error = format!("interrupted by {s:?}; no decision");
            eprintln!("check: {error}");
            Report { exit_code: s as u8, ..Report::new(Vec::new(), 0, Some(error)) }
        }
    };
    let mut out = std::io::stdout();
    let written = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|j| writeln!(out, "{j}"))
    } else if report.error.is_none() {
        write_table(&mut out, &report)
    } else {
        Ok(())
    };
    // The exit code still says the decision.
    if let Err(e) = written {
        eprintln!("error: cannot write the report: {e}");
    }
    report.exit_code
}

/// Prechecks every cluster once through `runner` (its concurrency cap, its client lookup);
/// results in input order.
async fn round(
    runner: &Arc<Runner<Clients>>,
    clusters: &[Arc<Cluster>],
) -> Vec<(Precheck, SystemTime)> {
    let tasks: Vec<_> = clusters
        .iter()
        .map(|c| {
            let (runner, name) = (runner.clone(), c.name.clone());
            tokio::spawn(
                async move { Some((runner.precheck_now(&name).await?, SystemTime::now())) },
            )
        })
        .collect();
    let failed = || (Precheck::failed(Outcome::task_failed()), SystemTime::now());
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let done = task
            .await
            .inspect_err(|e| tracing::error!(error = %e, "a precheck task failed"));
        out.push(done.ok().flatten().unwrap_or_else(failed));
    }
    out
}

/// Prechecks every cluster once; with `--wait`, again every `--every` (or the longest
/// Retry-After) until every one is ready and none is changing, or the deadline comes, or a
/// Retry-After would pass it. Returns the last round's results and the number of rounds.
async fn poll(
    args: &CheckArgs,
    runner: &Arc<Runner<Clients>>,
    clusters: &[Arc<Cluster>],
    listing: (&Config, &Clients),
) -> (Vec<(Precheck, SystemTime)>, u32) {
    let deadline = args.wait.map(|w| Instant::now() + w);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        if attempts > 1 {
            relist(runner.state(), clusters, args, listing).await;
        }
        let results = round(runner, clusters).await;
        let state = runner.state();
        let decide = |(c, (p, _)): (&Arc<Cluster>, &(Precheck, _))| {
            cluster_decision(state, &c.name, &p.outcome).0
        };
        let decisions: Vec<Decision> = clusters.iter().zip(&results).map(decide).collect();
        let decision = aggregate(decisions.iter().copied());
        let now = Instant::now();
        let retry_after = results
            .iter()
            .filter_map(|(p, _)| p.meta.retry_after)
            .max()
            .unwrap_or_default();
        // Done when all are ready, at the deadline, or when a Retry-After would pass it.
        let wait = |d: &Instant| decision != Decision::Go && now < *d && now + retry_after <= *d;
        let Some(deadline) = deadline.filter(wait) else {
            return (results, attempts);
        };
        let next = (now + args.every.max(retry_after)).min(deadline);
        // The progress line: how many are ready, who is waited on, and when the next round is.
        let waiting: Vec<String> = (clusters.iter().zip(&results).zip(&decisions))
            .filter(|(_, d)| **d != Decision::Go)
            .map(|((c, (p, _)), d)| {
                let verdict = match d {
                    Decision::Changing => "changing",
                    _ => p.outcome.verdict(),
                };
                let code = p.outcome.error_code();
                format!("{} {verdict} (code {code})", c.name)
            })
            .collect();
        eprintln!(
            "check: {}/{} ready; waiting on {}; next check in {}, {} left",
            clusters.len() - waiting.len(),
            clusters.len(),
            waiting.join(", "),
            secs(next - now),
            secs(deadline.saturating_duration_since(now)),
        );
        tokio::time::sleep_until(next).await;
    }
}

/// Before another round with `--wait`: what the listing says now about the discovered clusters
/// listed as changing, so a change that ended no longer holds the wait. Nothing is listed while
/// none is; a failed listing keeps what was known.
async fn relist(
    state: &State,
    clusters: &[Arc<Cluster>],
    args: &CheckArgs,
    (config, clients): (&Config, &Clients),
) {
    let listed_changing = |c: &Arc<Cluster>| {
        crate::outcome::listed_changing(c.info.as_ref().map(|i| i.status.as_str()))
    };
    let mut any = false;
    state.for_each(|s| any |= listed_changing(&s.cluster));
    if !any {
        return;
    }
    let listed = match select(config, args, clients).await {
        Ok(listed) => listed,
        Err(e) => return eprintln!("check: cannot list the clusters again: {e}"),
    };
    // Same clusters, with what the listing says now (one gone from it keeps what was known).
    let now: Vec<Arc<Cluster>> = clusters
        .iter()
        .map(|c| match listed.iter().find(|l| l.same_target(c)) {
            Some(again) => again.clone(),
            None => state.get(&c.name).map_or_else(|| c.clone(), |s| s.cluster),
        })
        .collect();
    state.sync(&now);
}

/// The report of the last round: each cluster's answer (with what `getClusterStatus` said of
/// one that is not ready) and the aggregate decision.
fn report(
    runner: &Runner<Clients>,
    clusters: &[Arc<Cluster>],
    results: &[(Precheck, SystemTime)],
    attempts: u32,
) -> Report {
    let reports = clusters
        .iter()
        .zip(results)
        .map(|(c, (p, at))| {
            let (decision, since) = cluster_decision(runner.state(), &c.name, &p.outcome);
            ClusterReport {
                cluster: c.name.clone(),
                region: c.region.to_string(),
                service_group_instance_no: c.service_group_instance_no,
                ready: p.outcome.is_ready() && decision != Decision::Changing,
                decision,
                changing_since: since.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                verdict: p.outcome.verdict(),
                code: p.outcome.error_code(),
                message: p.outcome.message(),
                latency_seconds: (p.meta.latency.as_secs_f64() * 1e4).round() / 1e4,
                request_id: p.meta.request_id.clone(),
                checked_at: humantime::format_rfc3339_millis(*at).to_string(),
                diagnosis: (runner.state().get(&c.name))
                    .and_then(|s| s.diagnosis)
                    .filter(|_| !p.outcome.is_ready())
                    .map(|b| DiagnosisView::of(&b)),
            }
        })
        .collect();
    Report::new(reports, attempts, None)
}

/// Whole seconds, for progress lines.
fn secs(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs_f64().round() as u64))
}

fn write_table(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let mut header = "CLUSTER,REGION,VERDICT,CODE,LATENCY,REQUEST ID,MESSAGE".split(',');
    let mut rows = vec![std::array::from_fn(|_| {
        header.next().unwrap_or_default().to_string()
    })];
    rows.extend(report.clusters.iter().map(|r| {
        [
            r.cluster.clone(),
            r.region.clone(),
            match r.decision {
                Decision::Changing => "changing".into(),
                _ => r.verdict.into(),
            },
            r.code.to_string(),
            format!("{:.0}ms", r.latency_seconds * 1e3),
            r.request_id.clone().unwrap_or_else(|| "-".into()),
            changing(r)
                + &match &r.diagnosis {
                    Some(d) => format!("{} ({})", r.message, d.summary),
                    None => r.message.clone(),
                },
        ]
    }));
    let widths: [usize; 7] =
        std::array::from_fn(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0));
    for row in &rows {
        let [init @ .., last] = row;
        for (cell, w) in init.iter().zip(widths) {
            write!(out, "{cell:<w$}  ")?;
        }
        writeln!(out, "{last}")?;
    }
    let verdict = match report.decision {
        Decision::Go => "GO: every cluster is ready for a rolling restart",
        Decision::NoGo => "NO-GO: at least one cluster is not ready",
        Decision::Unknown => "UNKNOWN: no decision could be made (see messages)",
        Decision::Changing => {
            "CHANGING: NCP is changing at least one cluster (a restart or another change is running)"
        }
    };
    writeln!(out, "{verdict}")
}

/// What the table's message starts with for a cluster NCP reports changing.
fn changing(r: &ClusterReport) -> String {
    r.changing_since.as_ref().map_or_else(String::new, |since| {
        format!("NCP reports it changing since {since}; precheck: ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definite_no_wins_over_unknown() {
        use Decision::*;
        assert_eq!(aggregate([Go, Go]), Go);
        assert_eq!(aggregate([Go, NoGo]), NoGo);
        assert_eq!(aggregate([Go, Unknown]), Unknown);
        assert_eq!(aggregate([Unknown, NoGo, Go]), NoGo);
        assert_eq!(aggregate([]), Unknown);
        assert_eq!(exit_code(Go), 0);
        assert_eq!(exit_code(NoGo), 1);
        assert_eq!(exit_code(Unknown), 2);
    }

    #[test]
    fn changing_is_a_definite_not_now_below_a_no() {
        use Decision::*;
        assert_eq!(aggregate([Go, Changing]), Changing);
        assert_eq!(aggregate([Unknown, Changing, Go]), Changing);
        assert_eq!(aggregate([Changing, NoGo]), NoGo);
        assert_eq!(exit_code(Changing), 1);
    }
}
