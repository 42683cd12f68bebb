//! cdss-precheck-exporter: NAVER Cloud CDSS `rollingRestartPreCheck` results as Prometheus metrics.
//!
//! Data flows one way, and the module map follows it (each module's `//!` header says what it
//! owns and who else may change it):
//!
//! 1. [`app`]: flags → a running exporter ([`app::run`]), exit codes. [`cli`], [`logging`],
//!    [`shutdown`]: process plumbing. [`completions`]: man pages and shell completions.
//! 2. [`config`]: YAML → a validated `Config`. [`credentials`]: where API keys come from (the
//!    SDK chain, server roles, files) and keeping them fresh; [`secret`]: never printed.
//!    [`ca_file`]: extra CA certificates for the gateway.
//! 3. [`discovery`] lists clusters; [`inventory`] merges static + discovered into a [`plan`],
//!    and is the only writer of the cluster set. [`reload`] swaps a new config in.
//! 4. [`scheduler`]: when each cluster is checked; its runner starts every precheck (schedule,
//!    gate, `check`) and alone records outcomes.
//! 5. [`ncp`]: the one call path (sign, send, open the envelope); [`outcome`]: what an answer
//!    means, decided once.
//! 6. [`state`]: the latest results. [`exposition`]: `/metrics` text (no I/O); [`gate`]: the
//!    go / no-go answer (pure); [`server`]: the HTTP endpoints; [`web`]: TLS and basic auth.
//! 7. [`check`]: the `check` command; [`restart`]: the `restart` command, the only sender of a
//!    mutating call; [`healthcheck`]: the image's probe of `/-/healthy`. [`sim`], [`demo`]:
//!    the simulated NCP gateway.
//!
//! At the bottom, spoken by all: [`model`] (names, the `Cluster` record) and `ncp::region`;
//! `error_text` puts an error and its sources on one line for every HTTP client.

// Nothing that comes from outside may panic the exporter: `unwrap` and `expect` only in tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub(crate) mod ca_file;
pub(crate) mod check;
pub mod cli;
pub(crate) mod completions;
pub mod config;
pub mod credentials;
pub mod demo;
pub(crate) mod discovery;
pub(crate) mod error_text;
pub mod exposition;
pub mod gate;
pub(crate) mod healthcheck;
pub(crate) mod inventory;
pub(crate) mod lock;
pub mod logging;
pub mod model;
pub mod ncp;
pub mod outcome;
pub(crate) mod plan;
pub(crate) mod reload;
pub(crate) mod restart;
pub mod scheduler;
pub mod secret;
pub(crate) mod server;
pub mod shutdown;
pub mod sim;
pub(crate) mod stamp;
pub mod state;
pub mod web;
