//! Properties over arbitrary input (proptest): the answer decoders (precheck, cluster list,
//! content type) take any bytes without panicking and what they return is consistent, and
//! signatures verify. (The config parser's property is in `tests/e2e/properties.rs`, the gate
//! path parser's in `gate.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::ncp_signature;
use crate::ncp::cluster_list::decode_page;
use crate::ncp::envelope::unexpected_content_type;
use crate::ncp::precheck::classify;
use crate::ncp::sign;
use crate::outcome::{Decision, FailureReason, Outcome};

/// A media type and whether it is JSON (`application/json` or a `+json` suffix).
fn media_type() -> impl Strategy<Value = (&'static str, bool)> {
    prop_oneof![
        Just(("application/json", true)),
        Just(("application/problem+json", true)),
        Just(("application/vnd.api+json", true)),
        Just(("text/html", false)),
        Just(("text/plain", false)),
        Just(("application/xml", false)),
        Just(("application/octet-stream", false)),
        Just(("text/html+xml", false)),
    ]
}

/// Bodies that look a bit like what the gateway sends, to get past the first bytes.
fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        Just("null".to_string()),
        Just("0".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 ]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just("1e400".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
    ];
    (scalar.clone(), scalar.clone(), scalar, any::<bool>()).prop_map(|(code, result, err, gw)| {
        if gw {
            format!(r#"{{"error":{{"errorCode":{err},"message":{result},"details":{code}}}}}"#)
                .into_bytes()
        } else {
            format!(r#"{{"code":{code},"message":"m","result":{result},"requestId":{err}}}"#)
                .into_bytes()
        }
    })
}

/// One `allowedClusters` item: mostly well formed, sometimes with a bad number or name, a
/// missing field, or not an object at all.
fn list_item() -> impl Strategy<Value = String> {
    let no = prop_oneof![
        10 => (1u64..10_000_000).prop_map(|n| n.to_string()),
        2 => (1u64..10_000_000).prop_map(|n| format!("\"{n}\"")),
        1 => Just("0".to_string()),
        1 => Just("-5".to_string()),
        1 => Just("\"12x\"".to_string()),
        1 => Just("null".to_string()),
    ];
    let name = prop_oneof![
        10 => "[a-z0-9][a-z0-9._-]{0,20}".prop_map(|s| format!("\"{s}\"")),
        1 => Just("\"\"".to_string()),
        1 => Just("\"../etc\"".to_string()),
        1 => Just("\"has space\"".to_string()),
        1 => Just("42".to_string()),
    ];
    let object = (no, name, proptest::option::of("[A-Z]{0,10}"), proptest::bool::weighted(0.1)).prop_map(
        |(no, name, status, drop_no)| {
            let status = status.map_or(String::new(), |s| format!(r#","serverStatus":"{s}""#));
            if drop_no {
                format!(r#"{{"clusterName":{name}{status}}}"#)
            } else {
                format!(
                    r#"{{"serviceGroupInstanceNo":{no},"clusterName":{name}{status},"kafkaVersion":"3.5.1"}}"#
                )
            }
        },
    );
    prop_oneof![12 => object, 1 => Just("7".to_string()), 1 => Just("[]".to_string())]
}

/// A cluster-list answer with an `allowedClusters` array of 0 to 7 items; sometimes the array
/// is not an array, or the envelope is not a success.
fn list_page() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let items = proptest::collection::vec(list_item(), 0..8);
    (items, 0u8..10, any::<bool>(), 1u64..5).prop_map(|(items, shape, last, page)| {
        let n = items.len();
        let list = match shape {
            0 => "{}".to_string(),
            1 => "null".to_string(),
            _ => format!("[{}]", items.join(",")),
        };
        let code = if shape == 2 { 1 } else { 0 };
        let body = format!(
            r#"{{"code":{code},"message":"m","result":{{"currentPage":{page},"isLast":{last},"totalPage":4,"allowedClusters":{list}}}}}"#
        );
        (if shape >= 2 { n } else { 0 }, body.into_bytes())
    })
}

const CASES: u32 = 2000;

#[test]
fn any_list_page_decodes_or_errs() {
    let decoded_items = AtomicUsize::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop_oneof![5 => 200u16..300, 1 => 0u16..1000],
        prop_oneof![
            6 => list_page(),
            1 => any::<Vec<u8>>().prop_map(|b| (0, b)),
            1 => json_ish().prop_map(|b| (0, b))
        ],
    );
    runner
        .run(&strategy, |(status, (items, body))| {
            if let Ok(page) = decode_page(status, &body) {
                if items > 0 {
                    // Every item is either a cluster or a reported malformed entry.
                    prop_assert_eq!(page.clusters.len() + page.malformed.len(), items);
                }
                for c in &page.clusters {
                    decoded_items.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(c.service_group_instance_no > 0);
                    prop_assert!(!c.cluster_name.is_empty());
                    prop_assert!(
                        c.cluster_name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')),
                        "{:?}",
                        c.cluster_name
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    // The assertions above ran on many clusters, not on none.
    let n = decoded_items.load(Ordering::Relaxed);
    eprintln!("{n} clusters decoded in {CASES} cases");
    assert!(
        n >= CASES as usize / 3,
        "only {n} clusters decoded in {CASES} cases"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_answer_classifies_consistently(status in 0u16..1000, body in prop_oneof![any::<Vec<u8>>(), json_ish()], loc in proptest::option::of(".{0,40}")) {
        let (outcome, _) = classify(status, loc.as_deref(), &body);
        // Exactly one of: ready (go), a CDSS "no", or a failure with a reason.
        prop_assert_eq!(outcome.is_ready(), outcome.decision() == Decision::Go);
        // An answer from CDSS (ready or not) is code 0 and a decision; anything that is not a
        // decision has a failure reason.
        if outcome.failure_reason().is_none() {
            prop_assert_eq!(outcome.error_code(), 0);
            prop_assert!(outcome.decision() != Decision::Unknown);
        }
        if outcome.decision() == Decision::Unknown {
            prop_assert!(outcome.failure_reason().is_some());
        }
        if (300..400).contains(&status) {
            prop_assert!(!outcome.is_ready(), "a redirect is never ready");
        }
        // Only a 2xx can be ready, whatever its body says (README, "a success envelope on an
        // error status").
        prop_assert!(!outcome.is_ready() || (200..300).contains(&status), "ready on HTTP {}", status);
        let message = outcome.message();
        prop_assert!(!message.contains('\n'));
        prop_assert!(message.len() < 1000, "message of {} bytes", message.len());
    }

    #[test]
    fn any_content_type_is_judged_only_on_a_2xx_and_consistently(status in 0u16..1000, ct in proptest::option::of(".{0,60}")) {
        let problem = unexpected_content_type(status, ct.as_deref());
        let success = (200..300).contains(&status);
        // Only a 2xx is judged by its type, and a missing Content-Type is tolerated.
        if !success || ct.is_none() {
            prop_assert_eq!(&problem, &None);
        }
        match &problem {
            // A rejected type is no decision: an invalid_response on the status that came.
            Some(outcome) => {
                prop_assert!(
                    matches!(outcome, Outcome::InvalidResponse { http_status, .. } if *http_status == status),
                    "{:?}", outcome
                );
                prop_assert_eq!(outcome.failure_reason(), Some(FailureReason::InvalidResponse));
                prop_assert_eq!(outcome.decision(), Decision::Unknown);
                prop_assert!(!outcome.message().contains('\n'), "{:?}", outcome.message());
            }
            // An accepted 2xx type says JSON somewhere.
            None if success => {
                if let Some(ct) = &ct {
                    prop_assert!(ct.to_ascii_lowercase().contains("json"), "{:?} accepted", ct);
                }
            }
            None => {}
        }
    }

    #[test]
    fn json_media_types_pass_and_others_do_not(status in 200u16..300, (media, json) in media_type(), upper in any::<u32>(), params in prop_oneof![Just(""), Just("; charset=utf-8"), Just(";charset=UTF-8"), Just(" ; x=+json")], pad in prop_oneof![Just(""), Just(" "), Just("\t")]) {
        // Any case (media types are case-insensitive), any parameters, white space around.
        let cased: String = media
            .chars()
            .enumerate()
            .map(|(i, c)| if upper >> (i % 32) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        let ct = format!("{pad}{cased}{params}{pad}");
        let problem = unexpected_content_type(status, Some(&ct));
        prop_assert_eq!(problem.is_none(), json, "{:?}: {:?}", ct, problem);
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them(secret in ".{1,40}", uri in "/[ -~]{0,80}", ts in any::<u64>(), ak in "[A-Za-z0-9]{1,20}", flip in any::<u64>()) {
        let sig = sign::sign(&secret, "POST", &uri, ts, &ak);
        prop_assert_eq!(&sig, &ncp_signature(&secret, "POST", &uri, ts, &ak));
        prop_assert!(sign::verify(&secret, "POST", &uri, ts, &ak, &sig));
        prop_assert!(!sign::verify(&secret, "POST", &uri, ts ^ (flip | 1), &ak, &sig));
    }
}
