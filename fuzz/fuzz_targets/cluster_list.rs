//! Any getClusterInfoList answer → a page or an error, no panic; kept items are well-formed.
#![no_main]
use cdss_precheck_exporter::ncp::cluster_list::decode_page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    if let Ok(page) = decode_page(input.0, input.1) {
        for c in page.clusters {
            assert!(c.service_group_instance_no > 0);
            assert!(!c.cluster_name.is_empty());
        }
    }
});
