//! Any request path and query → a plain configured-name candidate or nothing, no panic.
#![no_main]
use cdss_precheck_exporter::gate::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, Option<&str>)| {
    if let Some((name, _)) = parse_request(input.0, input.1) {
        assert!(!name.is_empty() && name.len() <= 128);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        assert!(!name.starts_with('.'));
    }
});
