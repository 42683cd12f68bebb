//! `restart`'s watch: reads `rollingRestartProgressCheck` every `--every` until the restart is
//! over, prints a line whenever the reading changes, and never calls a restart over before it has
//! seen it run.
//!
//! "Over" is every broker and ZooKeeper node up and green **after** a reading that was not, and
//! then a fresh precheck that says ready. All green before anything changed proves nothing (NCP
//! may start a restart a little after it accepts it): with no change within `--start-grace` the
//! watch ends "never seen". `--timeout` ends it whatever it sees.

use std::time::Duration;

use tokio::time::Instant;

use super::report::{PrecheckView, Reading, Report};
use crate::cli::RestartArgs;
use crate::model::Cluster;
use crate::ncp::client::Clients;
use crate::ncp::precheck::{Precheck, precheck};
use crate::ncp::{cluster_status, restart};
use crate::outcome::Outcome;

/// How a watch ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The restart ran, every node is green again, and this precheck says ready.
    Done(Precheck),
    /// No reading differed from "all green" within `--start-grace`.
    NeverSeen,
    /// `--timeout` came first; `seen` tells whether the restart was seen running.
    TimedOut { seen: bool },
}

/// The cluster's status now: the progress check, or `getClusterStatus` when CDSS answers the
/// progress check with an error (what it answers outside a restart is not documented).
async fn read(clients: &Clients, cluster: &Cluster) -> Result<cluster_status::Diagnosis, Outcome> {
    match restart::progress(clients, cluster).await {
        Err(Outcome::ApiError { .. }) => cluster_status::cluster_status(clients, cluster).await,
        read => read,
    }
}

/// Watches `cluster`'s restart, adding every reading to `report.timeline`.
pub(super) async fn watch(
    clients: &Clients,
    cluster: &Cluster,
    args: &RestartArgs,
    report: &mut Report,
) -> Ended {
    let began = Instant::now();
    let mut seen = false;
    loop {
        let elapsed = began.elapsed();
        let reading = match read(clients, cluster).await {
            Ok(status) => Reading::of(&status, elapsed),
            Err(failure) => Reading::failed(failure.message(), elapsed),
        };
        if (report.timeline.last()).is_none_or(|last| !last.same(&reading)) {
            eprintln!("restart: {}", reading.line());
        }
        seen |= reading.error.is_none() && !reading.all_green;
        let over = seen && reading.all_green;
        report.timeline.push(reading);
        if over {
            let p = precheck(clients, cluster).await;
            report.request_ids.extend(id("precheck", &p));
            if p.outcome.is_ready() {
                return Ended::Done(p);
            }
            let (verdict, message) = (p.outcome.verdict(), p.outcome.message());
            eprintln!(
                "restart: every node is green, but the precheck says {verdict}: {message}; still watching"
            );
            report.final_precheck = Some(PrecheckView::of(&p));
        }
        let elapsed = began.elapsed();
        if !seen && elapsed >= args.start_grace {
            return Ended::NeverSeen;
        }
        if elapsed >= args.timeout {
            return Ended::TimedOut { seen };
        }
        let next = args.every.min(args.timeout - elapsed);
        tokio::time::sleep(next.max(Duration::from_millis(100))).await;
    }
}

/// `operation: request id`, for the report, when the call had one.
pub(super) fn id(operation: &str, p: &Precheck) -> Option<String> {
    (p.meta.request_id.as_ref()).map(|id| format!("{operation}: {id}"))
}
