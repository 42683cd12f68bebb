//! The gateway's authentication rules: the three signature v2 headers, the timestamp window,
//! a known access key (the main one, an added account, or a rotating pair while it is valid)
//! and the signature. Records every access key that authenticated. A bad signature's `details`
//! repeat the access key, as some gateways do, so tests see that the exporter never shows it.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Request;
use hyper::body::Incoming;

use super::{Shared, TIMESTAMP_WINDOW, header, lock};
use crate::ncp::sign;

/// Checks the gateway's authentication rules; `Err` is the 401 to send.
pub(super) fn authenticate(shared: &Shared, req: &Request<Incoming>) -> Result<(), String> {
    let (Some(ts), Some(ak), Some(sig)) = (
        header(req, sign::HEADER_TIMESTAMP),
        header(req, sign::HEADER_ACCESS_KEY),
        header(req, sign::HEADER_SIGNATURE),
    ) else {
        return Err("Required headers are missing.".into());
    };
    let ts: u64 = ts.parse().map_err(|_| "Invalid timestamp.".to_string())?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        + shared.clock_offset_ms.load(Ordering::Relaxed);
    if (now_ms - ts as i64).unsigned_abs() > TIMESTAMP_WINDOW.as_millis() as u64 {
        return Err("The timestamp is outside the allowed window.".into());
    }
    if lock(&shared.revoked).contains(ak) {
        return Err("The access key has been revoked.".into());
    }
    let extra = || lock(&shared.extra_accounts).get(ak).cloned();
    let rotating = || {
        let schedules = lock(&shared.rotating);
        let schedule = schedules.iter().find(|k| k.owns(ak))?;
        let now = UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
        Some(
            schedule
                .valid_secret(ak, now)
                .ok_or("The access key has expired."),
        )
    };
    let secret = if ak == shared.access_key {
        shared.secret_key.clone()
    } else if let Some(secret) = extra() {
        secret
    } else {
        rotating()
            .ok_or("Invalid access key.")?
            .map_err(str::to_string)?
    };
    let uri = req.uri().path_and_query().map_or_else(
        || req.uri().path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    if !sign::verify(secret.expose(), req.method().as_str(), &uri, ts, ak, sig) {
        return Err(format!("Invalid signature for access key {ak}."));
    }
    lock(&shared.authenticated).insert(ak.to_string());
    Ok(())
}
