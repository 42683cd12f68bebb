//! Tests of the repository's own files: the Grafana dashboard and the alert rules (linted with
//! promtool, and evaluated by a real Prometheus scraping the exporter), and the deployment files
//! under `deploy/`. One test binary (STYLE.md, "Few test binaries"), sharing `support`.
//!
//! Run one topic with `cargo test --test repo dashboards::`.

mod support;

mod dashboards;
mod deploy;
mod prometheus;
