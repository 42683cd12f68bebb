//! Error text for people: an error and its sources on one line (reqwest's top-level message
//! alone says little). Used by every HTTP client of the crate: the NCP call path and the
//! metadata API.

/// The error and its sources, each once, joined with `: `.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    for source in std::iter::successors(e.source(), |s| s.source()) {
        let text = source.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
    }
    out
}
