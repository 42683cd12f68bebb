//! Properties over arbitrary input (proptest): the config parser takes any text a user may
//! write without panicking, and what it accepts is consistent. (The decoders' and the gate path
//! parser's properties are unit tests: `src/ncp/tests/properties.rs`, `src/gate.rs`.)

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use cdss_precheck_exporter::config::Config;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// A YAML config that is often valid: a few clusters, an interval and a timeout (either order),
/// sometimes a bad name, region or number, or a discovery block instead of clusters.
fn config_text() -> impl Strategy<Value = String> {
    let interval = prop_oneof![
        Just("500ms"),
        Just("30s"),
        Just("30s"),
        Just("1m"),
        Just("2m")
    ];
    let timeout = prop_oneof![Just("1s"), Just("5s"), Just("10s"), Just("1m")];
    let cluster = (
        prop_oneof![
            20 => "[a-z][a-z0-9-]{0,12}",
            1 => Just("-bad".to_string()),
            1 => Just("".to_string())
        ],
        prop_oneof![
            4 => Just("KR"),
            3 => Just("sgn"),
            3 => Just("JPN"),
            1 => Just("XX")
        ],
        prop_oneof![
            20 => (1u64..1_000_000).prop_map(|n| n.to_string()),
            1 => Just("0".to_string()),
            1 => Just("x".to_string())
        ],
    )
        .prop_map(|(name, region, no)| {
            format!("  - {{name: '{name}', region: {region}, service_group_instance_no: {no}}}\n")
        });
    (
        proptest::option::weighted(0.9, interval),
        proptest::option::weighted(0.8, timeout),
        proptest::collection::vec(cluster, 0..3),
        any::<bool>(),
    )
        .prop_map(|(interval, timeout, clusters, discovery)| {
            let mut text = String::new();
            if let Some(i) = interval {
                text.push_str(&format!("interval: {i}\n"));
            }
            if let Some(t) = timeout {
                text.push_str(&format!("timeout: {t}\n"));
            }
            if !clusters.is_empty() {
                text.push_str("clusters:\n");
                text.extend(clusters);
            }
            if discovery {
                text.push_str("discovery:\n  - region: KR\n");
            }
            text
        })
}

const CASES: u32 = 2000;

#[test]
fn any_config_text_parses_or_errs() {
    let parsed = AtomicUsize::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![
        1 => ".{0,300}".boxed(),
        1 => "(clusters|interval|timeout|gate|discovery|accounts):( |\n  - )[a-z0-9{}:, \\[\\]-]{0,60}\n".boxed(),
        4 => config_text().boxed(),
    ];
    runner
        .run(&strategy, |text| {
            match Config::parse(&text, Path::new("fuzz.yaml")) {
                Ok(c) => {
                    parsed.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(c.timeout < c.interval, "{text}");
                    prop_assert!(!c.clusters.is_empty() || !c.discovery.is_empty(), "{text}");
                    for cluster in &c.clusters {
                        prop_assert!(cluster.service_group_instance_no > 0, "{text}");
                        prop_assert!(!cluster.name.is_empty(), "{text}");
                    }
                }
                Err(e) => prop_assert!(e.to_string().starts_with("fuzz.yaml"), "{e}"),
            }
            Ok(())
        })
        .unwrap();
    // The success branch is reached often, not by luck.
    let n = parsed.load(Ordering::Relaxed);
    eprintln!("{n} of {CASES} configs parsed");
    assert!(
        n >= CASES as usize / 5,
        "only {n} of {CASES} configs parsed"
    );
}
