//! `cdss-sim`: the simulated NCP gateway as its own process, for benchmarks and manual testing.
//!
//! Serves cluster numbers `--first` .. `--first + --count - 1` as ready (after `--delay`, plus up
//! to `--jitter` more, a different time for each request), except every `--misbehave-every`th,
//! which fails in one of five ways, and every `--hang-every`th, which answers only after 10
//! minutes; any other number answers CDSS code 3. Keys come from NCLOUD_ACCESS_KEY / NCLOUD_SECRET_KEY, or the demo
//! keys when unset. Listens on loopback by default and prints its address on stdout.
//! `rollingRestart` restarts a cluster as `--restart-start-delay`, `--restart-step` and
//! `--restart-stuck` say; `--restarting N` starts one for cluster N at start, as NCP's console
//! would.

use std::collections::HashMap;
use std::time::Duration;

use cdss_precheck_exporter::demo::{DEMO_ACCESS_KEY, DEMO_SECRET_KEY};
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::{Behaviour, RestartPlan, SimConfig, SimGateway, fault_cycle};
use clap::Parser;

/// Simulated NCP API gateway for CDSS rollingRestartPreCheck.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: String,
    /// First ready cluster number.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// How many ready cluster numbers.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Delay before each answer (humantime, e.g. 50ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Up to this much more delay per answer, spread evenly over requests (humantime).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    jitter: Duration,
    /// Make every Nth cluster misbehave (0: none), cycling through HTTP 500, malformed JSON,
    /// a 60 s hang, 429 with Retry-After: 30, and a dropped connection.
    #[arg(long, default_value_t = 0)]
    misbehave_every: u64,
    /// Make every Nth cluster (counting from the first) hang for 10 minutes (0: none).
    #[arg(long, default_value_t = 0)]
    hang_every: u64,
    /// How long after `rollingRestart` the first broker goes down (humantime).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    restart_start_delay: Duration,
    /// How long each broker is down during a restart (humantime).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    restart_step: Duration,
    /// Restarts never end (they stay on the first broker).
    #[arg(long)]
    restart_stuck: bool,
    /// Start a restart of this cluster number at start (repeatable).
    #[arg(long)]
    restarting: Vec<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour = if !args.jitter.is_zero() {
        Behaviour::Jittered(
            args.delay,
            args.delay + args.jitter,
            Box::new(Behaviour::Ready),
        )
    } else if args.delay.is_zero() {
        Behaviour::Ready
    } else {
        Behaviour::Slow(args.delay, Box::new(Behaviour::Ready))
    };
    let hang = Behaviour::Slow(Duration::from_secs(600), Box::new(Behaviour::Ready));
    let faults = fault_cycle();
    let clusters: HashMap<u64, Behaviour> = (args.first..args.first + args.count)
        .map(|n| {
            let i = n - args.first;
            if args.hang_every > 0 && i % args.hang_every == 0 {
                (n, hang.clone())
            } else if args.misbehave_every > 0 && i % args.misbehave_every == 0 {
                (
                    n,
                    faults[((i / args.misbehave_every) % faults.len() as u64) as usize].clone(),
                )
            } else {
                (n, behaviour.clone())
            }
        })
        .collect();
    let access_key = std::env::var("NCLOUD_ACCESS_KEY").unwrap_or_else(|_| DEMO_ACCESS_KEY.into());
    let secret_key =
        Secret::new(std::env::var("NCLOUD_SECRET_KEY").unwrap_or_else(|_| DEMO_SECRET_KEY.into()));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let sim = SimGateway::start(
        listener,
        SimConfig {
            access_key,
            secret_key,
            clusters,
        },
    )?;
    let plan = RestartPlan {
        start_delay: args.restart_start_delay,
        step: args.restart_step,
        stuck: args.restart_stuck,
        lose_answer: false,
    };
    for n in args.first..args.first + args.count {
        sim.set_restart_plan(n, plan);
    }
    for n in args.restarting {
        anyhow::ensure!(
            sim.start_restart(n),
            "--restarting {n}: not a cluster that answers ready"
        );
    }
    println!("{}", sim.url());
    cdss_precheck_exporter::shutdown::signal().await;
    println!("requests served: {}", sim.total_requests());
    Ok(())
}
