//! Any status, Location and body → one Outcome, no panic; a redirect is never ready.
#![no_main]
use cdss_precheck_exporter::outcome::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Option<&str>, &[u8])| {
    let (status, location, body) = input;
    let (outcome, _) = classify(status, location, body);
    assert!(!((300..400).contains(&status) && outcome.is_ready()));
    let _ = (outcome.error_code(), outcome.message(), outcome.decision(), outcome.failure_reason());
});
