//! Any YAML text → a validated Config or a located error, no panic.
#![no_main]
use cdss_precheck_exporter::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Config::parse(text, std::path::Path::new("fuzz.yaml")) {
        Ok(c) => assert!(c.timeout < c.interval),
        Err(e) => assert!(e.to_string().starts_with("fuzz.yaml")),
    }
});
