//! NCP API Gateway signature v2, as a pure function.
//!
//! String to sign: `METHOD + " " + URI + "\n" + TIMESTAMP + "\n" + ACCESS_KEY`, where URI is the
//! path plus `?query` (still percent-encoded) when there is one. The signature is standard Base64
//! (with padding) of HMAC-SHA256 keyed by the secret key. The host and the body are not signed.
//! This module knows nothing of HTTP clients or clocks: callers pass the timestamp in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the request time in milliseconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "x-ncp-apigw-timestamp";
/// Header carrying the access key id.
pub const HEADER_ACCESS_KEY: &str = "x-ncp-iam-access-key";
/// Header carrying the signature.
pub const HEADER_SIGNATURE: &str = "x-ncp-apigw-signature-v2";

/// The exact bytes that are signed.
fn string_to_sign(method: &str, uri: &str, timestamp_ms: u64, access_key: &str) -> String {
    format!("{method} {uri}\n{timestamp_ms}\n{access_key}")
}

/// HMAC-SHA256 of the string to sign, keyed by the secret key.
fn mac(secret_key: &str, string_to_sign: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    mac
}

/// Signature v2 for one request.
pub fn sign(
    secret_key: &str,
    method: &str,
    uri: &str,
    timestamp_ms: u64,
    access_key: &str,
) -> String {
    let signed = string_to_sign(method, uri, timestamp_ms, access_key);
    STANDARD.encode(mac(secret_key, &signed).finalize().into_bytes())
}

/// Checks a received signature in constant time (used by the simulated gateway).
pub(crate) fn verify(
    secret_key: &str,
    method: &str,
    uri: &str,
    timestamp_ms: u64,
    access_key: &str,
    signature_b64: &str,
) -> bool {
    let Ok(received) = STANDARD.decode(signature_b64.as_bytes()) else {
        return false;
    };
    let signed = string_to_sign(method, uri, timestamp_ms, access_key);
    mac(secret_key, &signed).verify_slice(&received).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed with openssl, independently of this code:
    //   printf 'POST /api/v1/cluster/rollingRestartPreCheck\n1700000000000\nAKIDEXAMPLE' \
    //     | openssl dgst -sha256 -hmac 'secretEXAMPLEkey' -binary | base64
    //   => BSPyCTZK5zdV0d6Zc6972KrLYJnHl3Pgi/LJtoIVbic=
    #[test]
    fn precheck_path_vector() {
        assert_eq!(
            sign(
                "secretEXAMPLEkey",
                "POST",
                "/api/v1/cluster/rollingRestartPreCheck",
                1_700_000_000_000,
                "AKIDEXAMPLE"
            ),
            "BSPyCTZK5zdV0d6Zc6972KrLYJnHl3Pgi/LJtoIVbic="
        );
    }

    //   printf 'GET /api/v1/cluster/getClusterStatus/3432149?responseFormatType=json&name=a%%2Fb\n1732690000123\nncp_iam_BPAMKR1' \
    //     | openssl dgst -sha256 -hmac 'S3cr3t/Key+With=Chars' -binary | base64
    //   => KXcuwAjgUve37wGpjwJ5m4uhbcK7esudZ5yKyKtjLu8=
    // (printf turns `%%` into `%`, so the signed query is the raw `name=a%2Fb`.)
    #[test]
    fn query_string_is_signed_raw() {
        let uri = "/api/v1/cluster/getClusterStatus/3432149?responseFormatType=json&name=a%2Fb";
        let sig = sign(
            "S3cr3t/Key+With=Chars",
            "GET",
            uri,
            1_732_690_000_123,
            "ncp_iam_BPAMKR1",
        );
        assert_eq!(sig, "KXcuwAjgUve37wGpjwJ5m4uhbcK7esudZ5yKyKtjLu8=");
    }

    #[test]
    fn string_to_sign_layout() {
        assert_eq!(
            string_to_sign("POST", "/api/sgn-v1/x", 42, "AK"),
            "POST /api/sgn-v1/x\n42\nAK"
        );
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_changes() {
        let sig = sign("sk", "POST", "/p", 1, "ak");
        assert!(verify("sk", "POST", "/p", 1, "ak", &sig));
        assert!(!verify("sk2", "POST", "/p", 1, "ak", &sig));
        assert!(!verify("sk", "POST", "/p", 2, "ak", &sig));
        assert!(!verify("sk", "POST", "/q", 1, "ak", &sig));
        assert!(!verify("sk", "GET", "/p", 1, "ak", &sig));
        assert!(!verify("sk", "POST", "/p", 1, "ak", "not base64!"));
    }
}
