//! Unit tests of the call path as a whole, moved here from `tests/e2e` because they drive
//! internals no user touches (`Clients`, `precheck`, `classify`, the envelope):
//!
//! - [`wire`]: the request on the wire, byte for byte, and redirects never followed;
//! - [`properties`]: the decoders over arbitrary input, and signatures (proptest);
//! - [`tls`]: the gateway client's certificate checks against the simulated gateway on HTTPS.

mod properties;
mod tls;
mod wire;

/// NCP's signature v2, written from `ncp-api.md` and independent of `ncp::sign`: standard
/// Base64 of HMAC-SHA256(secret, METHOD + " " + URI + "\n" + TIMESTAMP + "\n" + ACCESS_KEY).
fn ncp_signature(
    secret: &str,
    method: &str,
    uri: &str,
    timestamp_ms: u64,
    access_key: &str,
) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{method} {uri}\n{timestamp_ms}\n{access_key}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
