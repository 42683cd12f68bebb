//! End-to-end tests over loopback, one module per topic, in one test binary (STYLE.md, "Few test
//! binaries"). Every module drives the library entry point or the real binary against the
//! simulated gateway on 127.0.0.1, and shares the harness in `support`.
//!
//! Run one topic with `cargo test --test e2e discovery::`.

mod support;

mod changing;
mod check;
mod cli;
mod credentials_chain;
mod diagnosis;
mod discovery;
mod examples;
mod exporter;
mod faults;
mod gate;
mod healthcheck;
mod hostile;
mod isolation;
mod properties;
mod restart;
mod secrets;
mod soak;
mod tls;
mod web_config;
