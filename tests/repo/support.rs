//! Shared by the dashboard and Prometheus tests: finding the real tools (Prometheus, promtool,
//! jsonnet), rendering the mixin, reading the files under `dashboards/`, and turning dashboard
//! queries into plain PromQL the way Grafana does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A file of this repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The path of a tool (`promtool`, `prometheus`, `jsonnet`) on `PATH`. Missing tools fail the
/// test: CI installs them (`.ci/run`), and a test that silently passes without them proves nothing.
pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "`{name}` is not installed, and this test needs the real tool: install Debian's \
             {} package (`apt-get update && apt-get install -y {0}`), as .ci/run does (CI={:?})",
            if name == "jsonnet" {
                "jsonnet"
            } else {
                "prometheus"
            },
            std::env::var("CI").unwrap_or_default()
        ),
    }
}

/// Renders the mixin (`dashboards/render.jsonnet`) into `dir` as `scripts/mixin.sh` does, with
/// `config` (jsonnet, e.g. `{selector: 'job="x"'}`) over its `_config`: `alerts.yaml`,
/// `cdss-precheck.json` and `prometheusrule.yaml`.
pub fn render_mixin(config: &str, dir: &Path) {
    let jsonnet = |extra: &[&str]| {
        let out = Command::new(tool("jsonnet"))
            .current_dir(repo_path(""))
            .args(["-J", "dashboards", "--tla-code"])
            .arg(format!("config={config}"))
            .args(extra)
            .arg("dashboards/render.jsonnet")
            .output()
            .expect("jsonnet");
        assert!(
            out.status.success(),
            "jsonnet could not render the mixin with {config}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let dir_arg = dir.to_string_lossy().into_owned();
    jsonnet(&["-S", "-m", &dir_arg]);
    let dashboard = jsonnet(&["--tla-code", "dashboard=true"]);
    std::fs::write(dir.join("cdss-precheck.json"), dashboard).unwrap();
}

/// A YAML file of the repository as JSON values.
pub fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The dashboard JSON.
pub fn dashboard() -> Value {
    let rel = "dashboards/cdss-precheck.json";
    let text = std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every panel of the dashboard, including panels nested in collapsed rows.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// (panel title, PromQL with Grafana variables) for every query target of every panel.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap_or("<untitled>").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push((title.clone(), expr.to_string()));
            }
        }
    }
    out
}

/// (variable name, `label_values(selector, label)` query) for every query variable.
pub fn variable_queries(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = match &v["query"] {
                Value::String(s) => s.clone(),
                other => other["query"].as_str().expect("variable query").to_string(),
            };
            (v["name"].as_str().expect("name").to_string(), q)
        })
        .collect()
}

/// `label_values(selector, label)` → (selector, label).
pub fn parse_label_values(q: &str) -> (String, String) {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(selector, label): {q}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .unwrap_or_else(|| panic!("label_values without a label: {q}"));
    (selector.trim().to_string(), label.trim().to_string())
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`) with `values`. An unknown
/// variable panics, so a new variable in the dashboard must be given a value in the tests.
pub fn substitute(expr: &str, values: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            // A `$` that is not a variable, e.g. the end anchor of a regex.
            out.push('$');
            rest = after;
            continue;
        }
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => panic!("no test value for Grafana variable ${name} in {expr}"),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Grafana's built-in interval variables, with values a dashboard would get on a short range.
pub fn builtin_values() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
    ])
}

/// Every alerting rule of `dashboards/alerts.yaml`.
pub fn alert_rules() -> Vec<Value> {
    yaml("dashboards/alerts.yaml")["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .filter(|r| r.get("alert").is_some())
        .collect()
}
