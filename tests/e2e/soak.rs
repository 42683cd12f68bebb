//! Soak, quick mode: concurrent scrapers hammer `/metrics` of the real binary while a third of
//! the clusters misbehave. Zero failed scrapes, RSS growth under 10% after warm-up, no
//! file-descriptor growth. `scripts/soak.sh` is the full version (wrk, 200 scrapers, 60 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Process, Spec, config_yaml, exporter_command, start_sim};
use cdss_precheck_exporter::sim::{Behaviour, fault_cycle};

const CLUSTERS: usize = 300;
const SCRAPERS: usize = 50;
const WARMUP: Duration = Duration::from_secs(3);
const RUN: Duration = Duration::from_secs(8);

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Connections the process holds open on its own listen `port` (accepted ones, not the
/// listener): its socket fds matched against the kernel's TCP table.
fn accepted_connections(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let listening = cols.get(3) == Some(&"0A");
            if local_port == Some(port)
                && !listening
                && cols.get(9).is_some_and(|i| inodes.contains(*i))
            {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapers_never_fail_and_nothing_grows() {
    let faults = fault_cycle();
    let names: Vec<String> = (0..CLUSTERS).map(|i| format!("c{i:04}")).collect();
    let specs: Vec<Spec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let b = if i % 3 == 0 {
                faults[(i / 3) % faults.len()].clone()
            } else {
                Behaviour::Ready
            };
            (&*n.clone().leak(), "KR", i as u64 + 1, Some(b))
        })
        .collect();
    let sim = start_sim(&specs).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        config_yaml(
            &sim.url(),
            "interval: 2s\ntimeout: 1s\nconcurrency: 32",
            &specs,
        ),
    )
    .unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    let (pid, addr) = (p.pid(), p.addr.clone());
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    // Idle before: every cluster has been prechecked once (the gateway pool is warm), no
    // scraper has connected yet.
    p.metrics_until(Duration::from_secs(60), "every cluster prechecked", |m| {
        m.lines()
            .filter(|l| l.starts_with("cdss_precheck_runs_total{"))
            .count()
            == CLUSTERS
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_fds0, idle_conns0) = (fds(pid), accepted_connections(pid, port));

    let url = format!("http://{addr}/metrics");
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WARMUP + RUN;
    let mut scrapers = tokio::task::JoinSet::new();
    for i in 0..SCRAPERS {
        let (url, ok, failed) = (url.clone(), ok.clone(), failed.clone());
        scrapers.spawn(async move {
            let mut builder = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5));
            if i % 2 == 0 {
                // Half of them come back on a new connection each time.
                builder = builder.pool_max_idle_per_host(0);
            }
            let http = builder.build().unwrap();
            while Instant::now() < deadline {
                let good = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.is_ok_and(|b| b.len() > 1000)
                    }
                    _ => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        });
    }
    tokio::time::sleep(WARMUP).await;
    let (rss0, fd0) = (proc_status(pid, "VmRSS:"), fds(pid));
    let busy_conns = accepted_connections(pid, port);
    scrapers.join_all().await;
    // Idle after: wait until the exporter has let go of every scraper's connection (an event,
    // with room for a loaded machine), then compare with idle before.
    let drained = Instant::now() + Duration::from_secs(30);
    while accepted_connections(pid, port) > idle_conns0 && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss1, fd1) = (proc_status(pid, "VmRSS:"), fds(pid));
    let idle_conns1 = accepted_connections(pid, port);
    assert_eq!(p.terminate().0, Some(0));

    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "soak quick: {ok} scrapes, {failed} failed; RSS {rss0} → {rss1} kB; fds {fd0} → {fd1}"
    );
    assert_eq!(failed, 0, "{failed} of {} scrapes failed", ok + failed);
    assert!(ok > 500, "only {ok} scrapes");
    assert!(
        rss1 * 10 < rss0 * 11,
        "RSS grew from {rss0} kB to {rss1} kB after warm-up"
    );
    assert!(fd1 <= fd0, "fds grew from {fd0} to {fd1}");
    // Like with like: idle before and idle after. The scrapers were seen (so the count works),
    // and none of their connections is left open.
    eprintln!(
        "soak quick: accepted connections {idle_conns0} idle → {busy_conns} busy → {idle_conns1} idle; fds {idle_fds0} idle → {fd1} idle"
    );
    assert!(
        busy_conns >= SCRAPERS / 2,
        "only {busy_conns} scraper connections seen"
    );
    assert_eq!(idle_conns0, 0, "connections open before any scraper");
    assert_eq!(idle_conns1, idle_conns0, "scraper connections left open");
    // The gateway pool (at most `concurrency: 32` sockets) may differ between the two moments.
    assert!(
        fd1 <= idle_fds0 + 32,
        "idle fds grew from {idle_fds0} to {fd1}"
    );
}
