//! NCP regions that serve CDSS, and where each one's API lives.
//!
//! Owns the table of default gateway hosts and regional path prefixes from `ncp-api.md`, the
//! operation paths below them, and the parsing of region names (case-insensitive in, upper-case
//! out). An [`Endpoint`] is one region's API at one gateway, with every operation's URL parsed
//! once. Pure, and at the bottom of the crate with `model`: it imports nothing of ours.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

/// A CDSS region. Its upper-case name is the `region` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Korea (public cloud).
    Kr,
    /// Singapore.
    Sgn,
    /// Japan.
    Jpn,
    /// Korea government cloud, capital region.
    Gov,
    /// Korea government cloud, southern region.
    Krs,
    /// Korea financial cloud.
    Fin,
}

/// Every region, in the order the README lists them.
pub(crate) const ALL_REGIONS: [Region; 6] = [
    Region::Kr,
    Region::Sgn,
    Region::Jpn,
    Region::Gov,
    Region::Krs,
    Region::Fin,
];

impl Region {
    /// The label value and the name users write in the config.
    pub(crate) fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The path prefix that is appended to the gateway, with or without an `api_gateway` override.
    pub(crate) fn base_path(self) -> &'static str {
        self.row().2
    }

    /// The region's name, the scheme and host of NCP's own gateway for it, and its path prefix.
    fn row(self) -> (&'static str, &'static str, &'static str) {
        const PUBLIC: &str = "https://clouddatastreamingservice.apigw.ntruss.com";
        const GOV: &str = "https://clouddatastreamingservice.apigw.gov-ntruss.com";
        const FIN: &str = "https://fin-clouddatastreamingservice.apigw.fin-ntruss.com";
        match self {
            Region::Kr => ("KR", PUBLIC, "/api/v1"),
            Region::Sgn => ("SGN", PUBLIC, "/api/sgn-v1"),
            Region::Jpn => ("JPN", PUBLIC, "/api/jpn-v1"),
            Region::Gov => ("GOV", GOV, "/api/v1"),
            Region::Krs => ("KRS", GOV, "/api/krs-v1"),
            Region::Fin => ("FIN", FIN, "/api/v1"),
        }
    }
}

/// One region's API at one gateway (NCP's own, or an `api_gateway` override): the URL of every
/// operation, parsed once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The region it serves.
    pub region: Region,
    /// `POST .../cluster/rollingRestartPreCheck`.
    pub precheck: Url,
    /// `POST .../cluster/getClusterInfoList`.
    pub cluster_list: Url,
    /// `GET .../cluster/getClusterStatus/`, without the cluster number (see
    /// [`Endpoint::cluster_status`]).
    pub cluster_status_base: String,
    /// `POST .../cluster/rollingRestart`: only the `restart` command sends it.
    pub rolling_restart: Url,
    /// `POST .../cluster/rollingRestartProgressCheck`.
    pub restart_progress: Url,
}

impl Endpoint {
    /// The API of `region` at `gateway` (scheme, host and port; `None`: NCP's own).
    pub(crate) fn new(gateway: Option<&str>, region: Region) -> Result<Self, url::ParseError> {
        let (_, default_gateway, base_path) = region.row();
        let base = format!("{}{base_path}/cluster", gateway.unwrap_or(default_gateway));
        Ok(Self {
            region,
            precheck: Url::parse(&format!("{base}/rollingRestartPreCheck"))?,
            cluster_list: Url::parse(&format!("{base}/getClusterInfoList"))?,
            cluster_status_base: Url::parse(&format!("{base}/getClusterStatus/"))?.into(),
            rolling_restart: Url::parse(&format!("{base}/rollingRestart"))?,
            restart_progress: Url::parse(&format!("{base}/rollingRestartProgressCheck"))?,
        })
    }

    /// `GET .../cluster/getClusterStatus/{no}` for cluster number `no`.
    pub(crate) fn cluster_status(&self, no: u64) -> Result<Url, url::ParseError> {
        Url::parse(&format!("{}{no}", self.cluster_status_base))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A region name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?} (expected one of KR, SGN, JPN, GOV, KRS, FIN)")]
pub struct UnknownRegion(pub String);

impl FromStr for Region {
    type Err = UnknownRegion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_REGIONS
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRegion(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_prints_upper_case() {
        assert_eq!("sgn".parse::<Region>(), Ok(Region::Sgn));
        assert_eq!("Kr".parse::<Region>(), Ok(Region::Kr));
        assert_eq!(Region::Jpn.to_string(), "JPN");
        assert!("EU".parse::<Region>().is_err());
    }

    #[test]
    fn table_matches_ncp_docs() {
        assert_eq!(Region::Sgn.base_path(), "/api/sgn-v1");
        assert_eq!(Region::Jpn.base_path(), "/api/jpn-v1");
        assert_eq!(
            Region::Gov.row().1,
            "https://clouddatastreamingservice.apigw.gov-ntruss.com"
        );
        assert_eq!(
            Region::Fin.row().1,
            "https://fin-clouddatastreamingservice.apigw.fin-ntruss.com"
        );
        assert_eq!(Region::Kr.base_path(), "/api/v1");
        let krs = Endpoint::new(None, "krs".parse().unwrap()).unwrap();
        assert_eq!(
            krs.precheck.as_str(),
            "https://clouddatastreamingservice.apigw.gov-ntruss.com/api/krs-v1/cluster/rollingRestartPreCheck"
        );
    }

    #[test]
    fn endpoint_urls() {
        let e = Endpoint::new(None, Region::Sgn).unwrap();
        assert_eq!(
            e.precheck.as_str(),
            "https://clouddatastreamingservice.apigw.ntruss.com/api/sgn-v1/cluster/rollingRestartPreCheck"
        );
        let e = Endpoint::new(Some("http://127.0.0.1:18080"), Region::Kr).unwrap();
        assert_eq!(
            e.cluster_list.as_str(),
            "http://127.0.0.1:18080/api/v1/cluster/getClusterInfoList"
        );
        assert_eq!(
            e.cluster_status(3432149).unwrap().as_str(),
            "http://127.0.0.1:18080/api/v1/cluster/getClusterStatus/3432149"
        );
        let krs = Endpoint::new(None, Region::Krs).unwrap();
        assert_eq!(
            krs.cluster_status(7).unwrap().as_str(),
            "https://clouddatastreamingservice.apigw.gov-ntruss.com/api/krs-v1/cluster/getClusterStatus/7"
        );
    }
}
