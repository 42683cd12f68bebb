//! The web config file as written, in exporter-toolkit's format: every setting checked while it
//! is parsed (so its error has its own line and column), and the toolkit's settings this exporter
//! does not implement refused by name rather than ignored.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use rustls::crypto::{SupportedKxGroup, aws_lc_rs};
use rustls::{NamedGroup, SupportedCipherSuite};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::config::yaml::{FileName, scalar};

/// The file as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebConfig {
    pub tls_server_config: Option<RawTls>,
    pub basic_auth_users: Option<HashMap<UserName, BcryptHash>>,
    pub http_server_config: Option<RawHttp>,
    pub rate_limit: Option<RawRateLimit>,
}

/// `http_server_config`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// exporter-toolkit's default is `true` (HTTP/2 over TLS); this exporter serves HTTP/1.1.
    pub http2: Option<bool>,
    /// Extra response headers, by name; only the names exporter-toolkit allows.
    pub headers: Option<HashMap<ExtraHeader, String>>,
}

/// `rate_limit`: a token bucket refilled with one token every `interval`, holding `burst`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    /// Absent or zero: no limit (as in exporter-toolkit).
    pub interval: Option<GoDuration>,
    pub burst: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the `Unsupported` fields are parsed only to be refused
pub(super) struct RawTls {
    pub cert_file: Option<FileName>,
    pub key_file: Option<FileName>,
    pub client_ca_file: Option<FileName>,
    pub client_auth_type: Option<ClientAuth>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    cert: Option<Unsupported>,
    key: Option<Unsupported>,
    client_ca: Option<Unsupported>,
    /// TLS 1.2 suites to allow (Go leaves TLS 1.3's alone, and so do we).
    pub cipher_suites: Option<Vec<CipherName>>,
    /// Accepted with no effect: Go ignores it since 1.18 (the server's order always wins).
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    /// Key exchange groups, in order.
    pub curve_preferences: Option<Vec<Curve>>,
    pub client_allowed_sans: Option<Vec<String>>,
}

/// An exporter-toolkit setting this exporter does not implement: an error, never ignored.
struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHY: &str = "an exporter-toolkit setting cdss-precheck-exporter does not support; remove it (see README, \"TLS and basic auth\")";
        impl<'de> Visitor<'de> for V {
            type Value = Unsupported;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WHY)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
                Err(de::Error::custom(WHY))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
                Err(de::Error::custom(WHY))
            }
        }
        d.deserialize_any(V)
    }
}

/// A basic-auth user name: not empty, and no `:` (Basic auth could not send it).
#[derive(PartialEq, Eq, Hash)]
pub(super) struct UserName(pub String);

scalar!(UserName, "a user name", |s| {
    if s.is_empty() || s.contains(':') {
        return Err(format!(
            "user name {s:?}: must be non-empty and without ':'"
        ));
    }
    Ok(UserName(s.to_string()))
});

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`), checked for form, never echoed.
pub(super) struct BcryptHash(pub String);

scalar!(BcryptHash, "a bcrypt hash", |s| {
    let s = s.trim();
    s.parse::<bcrypt::HashParts>()
        .map(|_| BcryptHash(s.to_string()))
        .map_err(|_| {
            "not a bcrypt hash (like $2y$10$ followed by 53 characters; make one with `htpasswd -nbBC 10 USER PASSWORD`)".to_string()
        })
});

/// `client_auth_type`, named as Go's `tls.ClientAuthType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// No client certificate is asked for (the default).
    NoClientCert,
    /// One is asked for but not required, and not verified.
    RequestClientCert,
    /// One is required but not verified against a CA (only proof of its key).
    RequireAnyClientCert,
    /// One is optional, but verified against `client_ca_file` when sent.
    VerifyClientCertIfGiven,
    /// One is required and verified against `client_ca_file`: real client authentication.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Every type; each is written as its name (`Debug`).
    const ALL: [ClientAuth; 5] = [
        ClientAuth::NoClientCert,
        ClientAuth::RequestClientCert,
        ClientAuth::RequireAnyClientCert,
        ClientAuth::VerifyClientCertIfGiven,
        ClientAuth::RequireAndVerifyClientCert,
    ];

    /// True for the types that refuse a client without a certificate.
    pub(super) fn requires_cert(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }

    pub(super) fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

scalar!(ClientAuth, "a client auth type", |s| {
    let names = ClientAuth::ALL.map(|a| format!("{a:?}"));
    match names.iter().position(|name| name == s.trim()) {
        Some(i) => Ok(ClientAuth::ALL[i]),
        None => Err(format!(
            "unknown client auth type {s:?} (expected one of {})",
            names.join(", ")
        )),
    }
});

/// `min_version` / `max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TlsVersion {
    Tls12,
    Tls13,
}

scalar!(TlsVersion, "a TLS version", |s| match s.trim() {
    "TLS12" => Ok(TlsVersion::Tls12),
    "TLS13" => Ok(TlsVersion::Tls13),
    "TLS10" | "TLS11" => Err(format!(
        "{s}: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13"
    )),
    _ => Err(format!(
        "unknown TLS version {s:?} (expected TLS12 or TLS13)"
    )),
});

/// A response header `http_server_config.headers` may set: exporter-toolkit's list, spelled as
/// it spells them (it refuses any other name, and so do we).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ExtraHeader {
    pub name: &'static str,
    /// The values it accepts; empty: any.
    pub values: &'static [&'static str],
}

/// exporter-toolkit's list: security headers only; the exporter sets the others itself.
const EXTRA_HEADERS: [ExtraHeader; 5] = [
    ExtraHeader {
        name: "Content-Security-Policy",
        values: &[],
    },
    ExtraHeader {
        name: "Strict-Transport-Security",
        values: &[],
    },
    ExtraHeader {
        name: "X-Content-Type-Options",
        values: &["nosniff"],
    },
    ExtraHeader {
        name: "X-Frame-Options",
        values: &["deny", "sameorigin"],
    },
    ExtraHeader {
        name: "X-XSS-Protection",
        values: &[],
    },
];

scalar!(ExtraHeader, "a header name", |s| {
    match EXTRA_HEADERS.iter().find(|h| h.name == s) {
        Some(h) => Ok(*h),
        None => Err(format!(
            "header {s:?} can not be configured (only {})",
            EXTRA_HEADERS.map(|h| h.name).join(", ")
        )),
    }
});

/// A duration as Go's `time.ParseDuration` reads it (`1s`, `500ms`, `1.5s`, `1m30s`; `0`),
/// which is how exporter-toolkit reads `rate_limit.interval`.
pub(super) struct GoDuration(pub Duration);

scalar!(GoDuration, "a duration like 1s or 500ms", |s| {
    parse_go_duration(s.trim())
        .map(GoDuration)
        .ok_or_else(|| format!("{s:?} is not a duration like 1s, 500ms or 1m30s"))
});

/// Go's duration syntax: decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`); a bare `0` is zero. No sign: a negative interval means nothing here.
pub(super) fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * seconds;
        rest = tail;
    }
    (!s.is_empty())
        .then(|| Duration::try_from_secs_f64(total).ok())
        .flatten()
}

/// A cipher suite by Go's name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`),
/// among those rustls implements (no CBC, no RSA key exchange).
pub(super) struct CipherName(pub SupportedCipherSuite);

/// Go's name of a suite: the IANA name, with TLS 1.3's written `TLS_` as Go writes them.
fn go_suite_name(suite: &SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or_default();
    name.replacen("TLS13_", "TLS_", 1)
}

scalar!(CipherName, "a cipher suite name", |s| {
    let suites = aws_lc_rs::default_provider().cipher_suites;
    match suites.iter().find(|c| go_suite_name(c) == s.trim()) {
        Some(c) => Ok(CipherName(*c)),
        None => Err(format!(
            "unknown or unsupported cipher suite {s:?} (rustls implements {})",
            suites
                .iter()
                .map(go_suite_name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
});

/// A key exchange group by Go's `tls.CurveID` name, among those the provider has.
pub(super) struct Curve(pub &'static dyn SupportedKxGroup);

/// Go's curve names, as exporter-toolkit lists them.
const CURVES: [(&str, NamedGroup); 4] = [
    ("CurveP256", NamedGroup::secp256r1),
    ("CurveP384", NamedGroup::secp384r1),
    ("CurveP521", NamedGroup::secp521r1),
    ("X25519", NamedGroup::X25519),
];

scalar!(Curve, "a curve name", |s| {
    let group = CURVES.iter().find(|(name, _)| *name == s.trim());
    let groups = aws_lc_rs::ALL_KX_GROUPS;
    let found = group.and_then(|(_, g)| groups.iter().find(|k| k.name() == *g));
    let have = CURVES
        .iter()
        .filter(|(_, g)| groups.iter().any(|k| k.name() == *g));
    found.map(|k| Curve(*k)).ok_or_else(|| {
        let have: Vec<&str> = have.map(|(name, _)| *name).collect();
        format!(
            "unknown or unsupported curve {s:?} (supported: {})",
            have.join(", ")
        )
    })
});
