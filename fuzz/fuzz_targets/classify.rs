//! Any status, Location and body → one Outcome, no panic; only a 2xx can be ready.
#![no_main]
use cdss_precheck_exporter::ncp::precheck::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Option<&str>, &[u8])| {
    let (status, location, body) = input;
    let (outcome, _) = classify(status, location, body);
    assert!(!outcome.is_ready() || (200..300).contains(&status));
    let _ = (outcome.error_code(), outcome.message(), outcome.decision(), outcome.failure_reason());
});
