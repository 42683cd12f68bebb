//! The mixin (`dashboards/*.libsonnet`), the alert rules and the dashboard rendered from it,
//! checked without a running server: the committed files are what the mixin renders, promtool's
//! own rule checks and unit tests (also on the mixin rendered for another job name), the
//! structure the README promises (every panel on `${datasource}` with a unit and a description,
//! every alert with severity, summary, description and an absolute runbook_url to a README
//! section that exists). `tests/repo/prometheus.rs` runs the queries against a real Prometheus;
//! `tests/repo/deploy.rs` checks the deployment files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::support::{
    alert_rules, dashboard, dashboard_queries, panels, parse_label_values, render_mixin, repo_path,
    substitute, tool, variable_queries, yaml,
};

/// The runbook URL pattern of the mixin's default `_config`, up to the anchor.
const RUNBOOKS: &str =
    "https://github.com/cdss-precheck-exporter/cdss-precheck-exporter/blob/main/README.md#";
use serde_json::Value;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .current_dir(repo_path(""))
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_check_rules_accepts_every_rule() {
    let (ok, out) =
        run(Command::new(tool("promtool")).args(["check", "rules", "dashboards/alerts.yaml"]));
    assert!(ok, "promtool check rules failed:\n{out}");
    let n = alert_rules().len();
    assert_eq!(
        n, 9,
        "alerts.yaml should hold the nine alerts of the README"
    );
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let (ok, out) =
        run(Command::new(tool("promtool")).args(["test", "rules", "dashboards/alerts.test.yaml"]));
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert has a unit test where it fires (with labels and annotations) and one where it
/// must not (an empty `exp_alerts` after a blip or a recovery).
#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let tests = yaml("dashboards/alerts.test.yaml");
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_array().expect("tests") {
        for case in group["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected == 0 {
                quiet.insert(name);
            } else {
                for a in case["exp_alerts"].as_array().into_iter().flatten() {
                    let annotations = &a["exp_annotations"];
                    for key in ["summary", "description", "runbook_url"] {
                        assert!(
                            annotations[key].is_string(),
                            "{name}: a firing case without {key}"
                        );
                    }
                    assert!(
                        a["exp_labels"]["severity"].is_string(),
                        "{name}: no severity"
                    );
                }
                fires.insert(name);
            }
        }
    }
    for rule in alert_rules() {
        let name = rule["alert"].as_str().expect("alert").to_string();
        assert!(
            fires.contains(&name),
            "{name} has no unit test where it fires"
        );
        assert!(
            quiet.contains(&name),
            "{name} has no unit test where it must not fire"
        );
    }
}

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn readme_anchors() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    let mut in_code = false;
    let mut anchors = BTreeSet::new();
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.insert(github_anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_in_the_readme() {
    let anchors = readme_anchors();
    for rule in alert_rules() {
        let name = rule["alert"].as_str().expect("alert");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        let a = &rule["annotations"];
        assert!(
            a["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: summary"
        );
        let description = a["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{name}: description");
        let runbook = a["runbook_url"].as_str().unwrap_or_default();
        let anchor = runbook
            .strip_prefix(RUNBOOKS)
            .unwrap_or_else(|| panic!("{name}: runbook_url {runbook:?} is not {RUNBOOKS}anchor"));
        assert!(
            anchors.contains(anchor),
            "{name}: runbook anchor #{anchor} is not a README heading"
        );
        assert_eq!(
            anchor,
            name.to_lowercase(),
            "{name}: runbook section named after the alert"
        );
    }
}

/// `dashboards/alerts.yaml`, `dashboards/cdss-precheck.json` and
/// `deploy/kubernetes/prometheusrule.yaml` are what `scripts/mixin.sh` renders, byte for byte.
#[test]
fn committed_files_are_what_the_mixin_renders() {
    let dir = tempfile::tempdir().unwrap();
    render_mixin("{}", dir.path());
    for (name, committed) in [
        ("alerts.yaml", "dashboards/alerts.yaml"),
        ("cdss-precheck.json", "dashboards/cdss-precheck.json"),
        (
            "prometheusrule.yaml",
            "deploy/kubernetes/prometheusrule.yaml",
        ),
    ] {
        let rendered = std::fs::read(dir.path().join(name)).unwrap();
        let file = std::fs::read(repo_path(committed)).unwrap();
        assert!(
            rendered == file,
            "{committed} is not what the mixin renders: run `bash scripts/mixin.sh`"
        );
    }
}

/// The promtool tests rewritten for another job name and runbook location: every series and
/// expected label `job="cdss-precheck"` becomes `job="kafka-precheck"`, every runbook URL the
/// wiki's. Returns the text and how many places changed.
fn tests_for_another_job() -> (String, usize) {
    let text = std::fs::read_to_string(repo_path("dashboards/alerts.test.yaml")).unwrap();
    let mut changed = 0;
    let mut out = text;
    for (from, to) in [
        (r#"job="cdss-precheck""#, r#"job="kafka-precheck""#),
        (r#"job=\"cdss-precheck\""#, r#"job=\"kafka-precheck\""#),
        ("job: cdss-precheck", "job: kafka-precheck"),
        (RUNBOOKS, "https://wiki.example.com/runbooks/cdss#"),
    ] {
        changed += out.matches(from).count();
        out = out.replace(from, to);
    }
    (out, changed)
}

fn promtool_test(dir: &Path, tests: &str) -> (bool, String) {
    std::fs::write(dir.join("alerts.test.yaml"), tests).unwrap();
    run(Command::new(tool("promtool"))
        .args(["test", "rules"])
        .arg(dir.join("alerts.test.yaml")))
}

/// The mixin rendered with another `_config` (job name and runbook location) passes the same
/// promtool tests with that job's series; the default rules do not (they select another job).
#[test]
fn the_mixin_rendered_for_another_job_passes_the_promtool_tests_for_that_job() {
    let (tests, changed) = tests_for_another_job();
    assert!(changed > 100, "only {changed} places name the job");
    let old_job = [
        r#"job="cdss-precheck""#,
        r#"job=\"cdss-precheck\""#,
        "job: cdss-precheck",
    ];
    assert!(
        old_job.iter().all(|j| !tests.contains(j)),
        "a job name left: {tests}"
    );

    let custom = tempfile::tempdir().unwrap();
    render_mixin(
        r#"{selector: 'job="kafka-precheck"', runbookURLPattern: 'https://wiki.example.com/runbooks/cdss#%s'}"#,
        custom.path(),
    );
    let rules = std::fs::read_to_string(custom.path().join("alerts.yaml")).unwrap();
    assert!(old_job.iter().all(|j| !rules.contains(j)), "{rules}");
    let (ok, out) = promtool_test(custom.path(), &tests);
    assert!(ok, "promtool test rules, job kafka-precheck:\n{out}");
    let dashboard = std::fs::read_to_string(custom.path().join("cdss-precheck.json")).unwrap();
    assert!(
        dashboard
            .contains(r#"label_values(cdss_exporter_build_info{job=\"kafka-precheck\"}, job)"#),
        "the job variable selects the configured job"
    );

    // The rules as committed, for job cdss-precheck, against the other job's series.
    let default = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_path("dashboards/alerts.yaml"),
        default.path().join("alerts.yaml"),
    )
    .unwrap();
    let (ok, out) = promtool_test(default.path(), &tests);
    assert!(
        !ok && out.contains("CdssPrecheckNotReady"),
        "the default rules should not see job kafka-precheck:\n{out}"
    );
}

#[test]
fn github_anchors() {
    assert_eq!(
        github_anchor(" CdssPrecheckNotReady"),
        "cdssprechecknotready"
    );
    assert_eq!(
        github_anchor("Prometheus and Grafana"),
        "prometheus-and-grafana"
    );
    assert_eq!(github_anchor("`reason` values (v1)"), "reason-values-v1");
}

#[test]
fn every_panel_uses_the_datasource_variable_sets_a_unit_and_has_a_description() {
    let d = dashboard();
    let panels = panels(&d);
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"], ds, "{title}: panel datasource");
        let unit = p["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default();
        assert!(!unit.is_empty(), "{title}: no unit");
        let description = p["description"].as_str().unwrap_or_default();
        assert!(description.len() > 20, "{title}: no description");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"], ds, "{title}: target datasource");
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{title}: empty expr"
            );
        }
    }
}

#[test]
fn the_panels_the_issue_lists_are_there() {
    let d = dashboard();
    let by_title: BTreeMap<&str, &Value> = panels(&d)
        .into_iter()
        .map(|p| (p["title"].as_str().unwrap_or_default(), p))
        .collect();
    let expr_of = |title: &str| -> String {
        let p = by_title
            .get(title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        p["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| t["expr"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let kind = |title: &str| {
        by_title[title]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mapping_texts = |title: &str| -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for mapping in by_title[title]["fieldConfig"]["defaults"]["mappings"]
            .as_array()
            .expect("mappings")
        {
            if mapping["type"] == "value" {
                for (k, v) in mapping["options"].as_object().expect("options") {
                    m.insert(
                        k.clone(),
                        v["text"].as_str().unwrap_or_default().to_string(),
                    );
                }
            }
        }
        m
    };

    assert_eq!(kind("Readiness per cluster"), "stat");
    assert!(expr_of("Readiness per cluster").starts_with("cdss_precheck_ok{"));
    let ready = mapping_texts("Readiness per cluster");
    assert_eq!(ready["1"], "READY");
    assert_eq!(ready["0"], "NOT READY");
    assert_eq!(kind("Readiness over time"), "state-timeline");
    assert_eq!(mapping_texts("Readiness over time"), ready);
    assert!(expr_of("Precheck latency").contains("cdss_precheck_duration_seconds"));
    assert_eq!(
        by_title["Precheck latency"]["fieldConfig"]["defaults"]["unit"],
        "s"
    );
    assert!(
        expr_of("Time since last answer from CDSS")
            .contains("time() - cdss_precheck_last_success_timestamp_seconds")
    );
    assert!(expr_of("Failures by reason").contains("rate(cdss_precheck_failures_total{"));
    assert!(expr_of("Failures by reason").contains("[$__rate_interval]"));
    let codes = mapping_texts("Last error code");
    for (code, words) in [
        ("0", "OK"),
        ("3", "invalid instance number"),
        ("200", "authentication failed"),
        ("210", "permission denied"),
        ("420", "rate limited"),
        ("-1", "no usable answer"),
    ] {
        assert!(
            codes.get(code).is_some_and(|t| t.contains(words)),
            "code {code}: {codes:?}"
        );
    }
    assert!(expr_of("Exporter up").starts_with("up{"));
    assert!(expr_of("Build info").contains("cdss_exporter_build_info"));
    assert!(expr_of("Config reload").contains("cdss_exporter_config_last_reload_successful"));
    assert!(expr_of("API calls").contains("rate(cdss_exporter_api_requests_total"));
}

#[test]
fn variables_are_datasource_job_region_and_multi_valued_cluster() {
    let d = dashboard();
    let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or_default(), v))
        .collect();
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for name in ["job", "region", "cluster"] {
        assert_eq!(vars[name]["type"], "query", "{name}");
        assert_eq!(vars[name]["datasource"]["uid"], "${datasource}", "{name}");
    }
    for name in ["region", "cluster"] {
        assert_eq!(vars[name]["multi"], true, "{name} is multi-select");
        assert_eq!(vars[name]["includeAll"], true, "{name} has All");
    }
    let queries: BTreeMap<String, String> = variable_queries(&d).into_iter().collect();
    assert_eq!(parse_label_values(&queries["region"]).1, "region");
    assert_eq!(parse_label_values(&queries["cluster"]).1, "cluster");
    assert_eq!(parse_label_values(&queries["job"]).1, "job");
    // Every panel query filters on the variables it can: the per-cluster ones on all three.
    for (title, expr) in dashboard_queries(&d) {
        assert!(
            expr.contains("job=~\"$job\""),
            "{title}: not filtered by $job: {expr}"
        );
        if expr.contains("cdss_precheck_") {
            for v in ["region=~\"$region\"", "cluster=~\"$cluster\""] {
                if !expr.contains("cdss_precheck_runs_total") {
                    assert!(expr.contains(v), "{title}: no {v}: {expr}");
                }
            }
        }
    }
}

#[test]
fn substitution_follows_grafana() {
    let mut v = crate::support::builtin_values();
    v.insert("job", "cdss-precheck");
    v.insert("cluster", "(a|b)");
    assert_eq!(
        substitute(
            r#"rate(x{job=~"$job",cluster=~"${cluster:regex}"}[$__rate_interval]) and y{l=~"^z$"}"#,
            &v
        ),
        r#"rate(x{job=~"cdss-precheck",cluster=~"(a|b)"}[1m]) and y{l=~"^z$"}"#
    );
    assert_eq!(
        parse_label_values(r#"label_values(up{job=~"$job"}, region)"#),
        (r#"up{job=~"$job"}"#.to_string(), "region".to_string())
    );
}
