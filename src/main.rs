//! The `cdss-precheck-exporter` binary: flags → logging → runtime → `app::main`.

use std::process::ExitCode;

use cdss_precheck_exporter::{app, cli::Cli, logging};
use clap::Parser as _;

/// jemalloc: a scrape's many small allocations cost less than with glibc's (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_level, cli.log_format);
    // Multi-threaded, with I/O and timers.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(app::EXIT_FAILURE);
        }
    };
    runtime.block_on(app::main(cli))
}
