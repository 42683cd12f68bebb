//! Properties over arbitrary input (proptest): decoders, the config parser and the gate's path
//! parser take any bytes without panicking, and what they return is consistent.

use std::path::Path;

use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::gate::parse_request;
use cdss_precheck_exporter::ncp::cluster_list::decode_page;
use cdss_precheck_exporter::ncp::sign;
use cdss_precheck_exporter::outcome::{Decision, classify, unexpected_content_type};
use proptest::prelude::*;

/// Bodies that look a bit like what the gateway sends, to get past the first bytes.
fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        Just("null".to_string()),
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
        let message = outcome.message();
        prop_assert!(!message.contains('\n'));
        prop_assert!(message.len() < 1000, "message of {} bytes", message.len());
    }

    #[test]
    fn any_content_type_is_checked_without_panicking(status in 0u16..1000, ct in proptest::option::of(".{0,60}")) {
        let _ = unexpected_content_type(status, ct.as_deref());
    }

    #[test]
    fn any_list_page_decodes_or_errs(status in 0u16..1000, body in prop_oneof![any::<Vec<u8>>(), json_ish()]) {
        if let Ok(page) = decode_page(status, &body) {
            for c in page.clusters {
                prop_assert!(c.service_group_instance_no > 0);
                prop_assert!(!c.cluster_name.is_empty());
            }
        }
    }

    #[test]
    fn any_config_text_parses_or_errs(text in prop_oneof![".{0,300}", "(clusters|interval|timeout|gate|discovery|accounts):( |\n  - )[a-z0-9{}:, \\[\\]-]{0,60}\n"]) {
        match Config::parse(&text, Path::new("fuzz.yaml")) {
            Ok(c) => {
                prop_assert!(c.timeout < c.interval);
                prop_assert!(!c.clusters.is_empty() || !c.discovery.is_empty());
            }
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.yaml")),
        }
    }

    #[test]
    fn gate_paths_only_ever_name_plain_names(path in prop_oneof![".{0,200}", "/gate/[a-zA-Z0-9._%/-]{0,140}"], query in proptest::option::of(".{0,40}")) {
        if let Some((name, _)) = parse_request(&path, query.as_deref()) {
            prop_assert!(!name.is_empty() && name.len() <= 128);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
            prop_assert!(!name.starts_with('.'), "no dot-names like ..");
        }
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them(secret in ".{1,40}", uri in "/[ -~]{0,80}", ts in any::<u64>(), ak in "[A-Za-z0-9]{1,20}", flip in any::<u64>()) {
        let sig = sign::sign(&secret, "POST", &uri, ts, &ak);
        prop_assert!(sign::verify(&secret, "POST", &uri, ts, &ak, &sig));
        prop_assert!(!sign::verify(&secret, "POST", &uri, ts ^ (flip | 1), &ak, &sig));
    }
}
