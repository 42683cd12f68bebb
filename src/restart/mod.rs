//! `cdss-precheck-exporter restart --cluster NAME`: a guarded rolling restart, for operators and
//! maintenance pipelines.
//!
//! Gate, start, watch, in that order: it prechecks the cluster now and reads its status, and
//! starts nothing unless the precheck says ready and NCP does not report the cluster changing;
//! it asks before starting (or takes `--yes`); it sends `rollingRestart` exactly once and never
//! again, even when the answer is lost; then it watches (`watch`) until the restart is over, the
//! timeout, or a signal, which stops only the watch. The only code in the crate that sends a
//! mutating call. Uses the config, keys and call path of `check` (`reload::load_command`,
//! `check::select`, `Clients`); the exit codes and the `--json` report are in `report`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::check::select;
use crate::cli::{CheckArgs, MIN_EVERY, RestartArgs};
use crate::model::Cluster;
use crate::ncp::client::Clients;
use crate::ncp::cluster_status::cluster_status;
use crate::ncp::precheck::precheck;
use crate::ncp::restart::{Started, start};
use crate::outcome::{Decision, Outcome, is_orange, listed_changing};
use crate::shutdown::{Signal, wait_for_signal};

mod report;
mod watch;

use report::{EXIT_CANNOT, EXIT_DONE, EXIT_NO, EXIT_TIMEOUT, EXIT_UNKNOWN, PrecheckView, Report};
use watch::{Ended, id};

/// What the gate found ready to restart: the clients, the cluster (with the account that signs),
/// and the demo's gateway when there is one (held while it serves).
type Ready = (Clients, Cluster, Option<crate::sim::SimGateway>);

/// Runs `restart` and returns its exit code (see `report`); with `--json` stdout holds one
/// report document whatever happens.
pub(crate) async fn main(config_file: &Path, demo: bool, args: &RestartArgs) -> u8 {
    let mut report = Report {
        cluster: args.cluster.clone(),
        started: Value::Bool(false),
        ..Report::default()
    };
    let signal = wait_for_signal();
    tokio::pin!(signal);
    let gated = tokio::select! {
        gated = gate(config_file, demo, args, &mut report) => Ok(gated),
        s = &mut signal => Err(s),
    };
    let code = match gated {
        Err(s) => report.end(
            "interrupted",
            s as u8,
            format!("interrupted by {s:?}; nothing was started"),
        ),
        Ok(Err(code)) => code,
        Ok(Ok((clients, cluster, _sim))) => {
            let code = start_and_watch(&clients, &cluster, args, &mut report, signal).await;
            report.count(&clients);
            code
        }
    };
    if args.json {
        eprintln!("restart: {}", report.message);
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot write the report: {e}"),
        }
    } else {
        println!("{}: {}", report.result.to_uppercase(), report.message);
    }
    code
}

/// Loads, finds the cluster and (unless `--watch-only`) decides whether it may be restarted now,
/// and asks. `Err` is the exit code of a report that has ended.
async fn gate(
    config_file: &Path,
    demo: bool,
    args: &RestartArgs,
    report: &mut Report,
) -> Result<Ready, u8> {
    let cannot = |report: &mut Report, why: String| report.end("not_started", EXIT_CANNOT, why);
    let (config, clients, sim) =
        (crate::reload::load_command(config_file, demo).await).map_err(|e| cannot(report, e))?;
    let by_name = CheckArgs {
        clusters: vec![args.cluster.clone()],
        all: false,
        json: false,
        wait: None,
        every: MIN_EVERY,
    };
    let found = select(&config, &by_name, &clients).await;
    let found = found.map_err(|e| cannot(report, e))?;
    let Some(cluster) = found.into_iter().next() else {
        return Err(cannot(
            report,
            format!("unknown cluster {:?}", args.cluster),
        ));
    };
    let account = args
        .account
        .clone()
        .unwrap_or_else(|| cluster.account.clone());
    if !config.accounts.contains_key(&account) {
        let known: Vec<&str> = config.accounts.keys().map(String::as_str).collect();
        let known = known.join(", ");
        return Err(cannot(
            report,
            format!("--account {account:?} is not in the config; it has: {known}"),
        ));
    }
    let cluster = Cluster {
        account,
        ..Arc::unwrap_or_clone(cluster)
    };
    report.region = Some(cluster.region.to_string());
    report.service_group_instance_no = Some(cluster.service_group_instance_no);
    report.account = Some(cluster.account.clone());
    let (name, region, no) = (
        &cluster.name,
        cluster.region,
        cluster.service_group_instance_no,
    );
    eprintln!(
        "restart: {name} ({region}, no. {no}), signing with account {:?}",
        cluster.account
    );
    if !args.watch_only
        && let Err(code) = decide(&clients, &cluster, args, report).await
    {
        report.count(&clients);
        return Err(code);
    }
    Ok((clients, cluster, sim))
}

/// The gate proper: a precheck now and a status read; `Ok` only when the precheck says ready, NCP
/// does not report the cluster changing, and the operator confirmed (not with `--dry-run`).
async fn decide(
    clients: &Clients,
    cluster: &Cluster,
    args: &RestartArgs,
    report: &mut Report,
) -> Result<(), u8> {
    let p = precheck(clients, cluster).await;
    report.request_ids.extend(id("precheck", &p));
    report.precheck = Some(PrecheckView::of(&p));
    let status = cluster_status(clients, cluster).await;
    // Unlike the daemon's rule, an orange role refuses even after a ready precheck: this read
    // is fresh, and orange is NCP's own word for "changing".
    let orange = |d: &crate::ncp::cluster_status::Diagnosis| {
        d.roles()
            .iter()
            .any(|(_, r)| is_orange(r.colour.as_deref()))
    };
    let listed = cluster.info.as_ref().map(|i| i.status.as_str());
    let changing = listed_changing(listed) || status.as_ref().is_ok_and(orange);
    let nodes = match &status {
        Ok(d) => d.summary(),
        Err(failure) => format!("getClusterStatus failed: {}", failure.message()),
    };
    let said = format!("{}: {} ({nodes})", p.outcome.verdict(), p.outcome.message());
    let decision = p.outcome.decision().unless_changing(changing);
    let (code, why) = match decision {
        Decision::Changing => (
            EXIT_NO,
            format!(
                "NCP reports {} changing: a restart or another change is already running ({nodes}); watch it with `restart --watch-only`",
                cluster.name
            ),
        ),
        Decision::Go if status.is_err() => (
            EXIT_CANNOT,
            format!(
                "the precheck says ready, but whether NCP is changing the cluster is unknown ({nodes})"
            ),
        ),
        Decision::Go => (EXIT_DONE, String::new()),
        Decision::NoGo => (EXIT_NO, format!("the precheck says {said}")),
        Decision::Unknown => (EXIT_CANNOT, format!("could not ask: {said}")),
    };
    report.decision = Some(decision);
    if code != EXIT_DONE {
        return Err(report.end("not_started", code, format!("{why}; nothing started")));
    }
    eprintln!("restart: the precheck says ready ({nodes})");
    if args.dry_run {
        let url = &cluster.endpoint.rolling_restart;
        let no = cluster.service_group_instance_no;
        let would = format!(
            "dry run: would send POST {url} {{\"serviceGroupInstanceNo\":{no}}} signed with account {:?}",
            cluster.account
        );
        return Err(report.end("would_start", EXIT_DONE, would));
    }
    confirm(cluster, &p, args, report).await
}

/// `--yes`, or a "y" on a terminal; nothing starts otherwise.
async fn confirm(
    cluster: &Cluster,
    p: &crate::ncp::precheck::Precheck,
    args: &RestartArgs,
    report: &mut Report,
) -> Result<(), u8> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        let why =
            "no terminal to confirm on: pass --yes to start without a question; nothing started";
        return Err(report.end("not_started", EXIT_CANNOT, why.into()));
    }
    let id = p.meta.request_id.as_deref().unwrap_or("-");
    eprint!(
        "Start a rolling restart of {} ({}, no. {}), signed with account {:?}? The precheck says ready (request id {id}). Brokers restart one at a time; clients may see interruptions. [y/N] ",
        cluster.name, cluster.region, cluster.service_group_instance_no, cluster.account
    );
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    let answer = read.await.ok().and_then(Result::ok).unwrap_or_default();
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        return Ok(());
    }
    Err(report.end(
        "not_started",
        EXIT_CANNOT,
        "not confirmed; nothing started".into(),
    ))
}

/// Sends `rollingRestart` exactly once and says what its answer means; `Err` is the exit code
/// of a report that has ended (nothing started).
async fn start_once(
    clients: &Clients,
    cluster: &Cluster,
    args: &RestartArgs,
    report: &mut Report,
) -> Result<(), u8> {
    let (started, meta) = start(clients, cluster).await;
    let request = meta.request_id.as_deref().unwrap_or("-");
    report.request_ids.extend(
        meta.request_id
            .as_ref()
            .map(|i| format!("rolling_restart: {i}")),
    );
    let (verdict, message) = match &started {
        Started::Yes => {
            report.started = Value::Bool(true);
            report.start_answer = Some("accepted".into());
            let every = humantime::format_duration(args.every);
            eprintln!(
                "restart: NCP accepted the rolling restart of {} (request id {request}); watching every {every}",
                cluster.name
            );
            return Ok(());
        }
        Started::No(failure) | Started::Unknown(failure) => (failure.verdict(), failure.message()),
    };
    if let Started::No(failure) = started {
        let refused = matches!(failure, Outcome::ApiError { .. });
        report.start_answer = Some(if refused { "refused" } else { "not_sent" }.into());
        let code = if refused { EXIT_NO } else { EXIT_CANNOT };
        let why = format!("NCP did not start the restart: {verdict}: {message}; nothing started");
        return Err(report.end("not_started", code, why));
    }
    report.started = Value::from("unknown");
    report.start_answer = Some("lost".into());
    eprintln!(
        "restart: no answer to rollingRestart ({verdict}: {message}): cannot tell whether NCP started the restart. It is not sent again; watching for it."
    );
    Ok(())
}

/// Sends `rollingRestart` once (unless `--watch-only`), then watches until the end, the timeout
/// or a signal.
async fn start_and_watch(
    clients: &Clients,
    cluster: &Cluster,
    args: &RestartArgs,
    report: &mut Report,
    signal: std::pin::Pin<&mut impl Future<Output = Signal>>,
) -> u8 {
    let name = &cluster.name;
    // Not raced with a signal: once sent, the call runs to its answer.
    if !args.watch_only
        && let Err(code) = start_once(clients, cluster, args, report).await
    {
        return code;
    }
    let watched = tokio::select! {
        ended = watch::watch(clients, cluster, args, report) => Ok(ended),
        s = signal => Err(s),
    };
    let again = format!(
        "watch it again with `cdss-precheck-exporter restart --watch-only --cluster {name}` or `check --wait 1h --cluster {name}`"
    );
    let (seen, result) = match watched {
        Err(s) => {
            let why = format!("stopped watching on {s:?}; a restart NCP started goes on: {again}");
            return report.end("interrupted", s as u8, why);
        }
        Ok(Ended::Done(p)) => {
            report.final_precheck = Some(PrecheckView::of(&p));
            report.request_ids.extend(id("precheck", &p));
            let took = report.timeline.last().map_or(0, |r| r.elapsed_seconds);
            let why = format!(
                "the rolling restart of {name} is over after {took}s: every node is up and green, and the precheck says ready"
            );
            (true, (EXIT_DONE, "done", why))
        }
        Ok(Ended::NeverSeen) => {
            let grace = humantime::format_duration(args.start_grace);
            let why = match &report.started {
                Value::Bool(true) => format!(
                    "NCP accepted the restart, but no change showed within {grace}; it may still start: {again}"
                ),
                Value::Bool(false) => format!("no restart of {name} seen running within {grace}"),
                _ => format!(
                    "cannot tell whether NCP started the restart: no change showed within {grace}, and it was not sent again; {again}"
                ),
            };
            (false, (EXIT_UNKNOWN, "unknown", why))
        }
        Ok(Ended::TimedOut { seen }) => {
            let after = humantime::format_duration(args.timeout);
            let why = format!(
                "the restart was not over after {after} (--timeout); it may still be running at NCP: {again}"
            );
            (seen, (EXIT_TIMEOUT, "timeout", why))
        }
    };
    if seen && !args.watch_only {
        // Whatever the answer said, the watch saw the restart run.
        report.started = Value::Bool(true);
    }
    let (code, result, why) = result;
    report.end(result, code, why)
}
