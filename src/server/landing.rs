//! `GET /`: the landing page, from the state. Every verdict, code and message comes from the
//! cluster's `Outcome`; nothing is decided here.

use std::fmt::Write as _;

use tokio::time::Instant;

use super::App;

/// Minimal HTML escaping for text we did not write (cluster names are restricted, messages are not).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The landing page: version, readiness, links, and every cluster's latest verdict.
pub(crate) fn page(app: &App) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let now = Instant::now();
    let mut rows = String::new();
    app.state.for_each(|s| {
        let (verdict, class, code, message, age) = match &s.last {
            None => ("never checked".to_string(), "unknown", String::new(), String::new(), "-".to_string()),
            Some(l) => (
                l.outcome.verdict().replace('_', " "),
                if l.outcome.is_ready() { "ok" } else { "bad" },
                l.outcome.error_code().to_string(),
                l.outcome.message(),
                format!("{}s", now.saturating_duration_since(l.at).as_secs()),
            ),
        };
        // Why it is not ready, next to the verdict: what getClusterStatus said about the nodes.
        let nodes = s.diagnosis.as_deref().map_or_else(String::new, |(d, _)| {
            format!("<br><span class=\"nodes\">{}</span>", esc(&d.summary()))
        });
        // A change NCP reports (a restart, say) explains a "not ready", and outranks a "ready".
        let changing = s.changing_since.map_or_else(String::new, |t| {
            let since = humantime::format_rfc3339_seconds(t);
            format!(" <span class=\"changing\">changing since {since}</span>")
        });
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}{changing}{nodes}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"gate/{name}\">gate</a></td></tr>",
            esc(&s.cluster.name),
            s.cluster.region,
            s.cluster.service_group_instance_no,
            esc(&verdict),
            esc(&code),
            age,
            esc(&message),
            name = esc(&s.cluster.name),
        );
    });
    let ready = if app.state.is_ready() {
        "ready"
    } else {
        "starting: first round of prechecks not finished"
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CDSS precheck exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.ok{{color:#1a7f37;font-weight:bold}}.bad{{color:#cf222e;font-weight:bold}}.unknown{{color:#6e7781}}.nodes{{font-weight:normal;color:#57606a}}.changing{{color:#9a6700}}</style>
</head><body>
<h1>CDSS precheck exporter</h1>
<p>Version {version}. Status: {ready}. Each cluster is prechecked every {interval}; values below are from the latest precheck, periodic or fresh (a gate's <code>?fresh=1</code>).</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li>
</ul>
<table>
<thead><tr><th>Cluster</th><th>Region</th><th>Instance no.</th><th>Verdict</th><th>Code</th><th>Age</th><th>Message</th><th>Gate</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        interval = humantime::format_duration(crate::lock::read(&app.live).interval),
    )
}
