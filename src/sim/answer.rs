//! How the simulator answers: the CDSS envelope, the gateway's error shape, and every
//! [`Behaviour`] (delays, failures, raw responses).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

use super::Behaviour;

pub(super) type Resp = Response<Full<Bytes>>;

/// The error returned from the service to make hyper drop the connection.
#[derive(Debug)]
pub(super) struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}
impl std::error::Error for Dropped {}

pub(super) fn json(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    r
}

pub(super) fn gateway_error(status: StatusCode, code: &str, message: &str, details: &str) -> Resp {
    json(
        status,
        serde_json::json!({"error": {"errorCode": code, "message": message, "details": details}})
            .to_string(),
    )
}

fn request_id(n: u64) -> String {
    format!("sim-{n:08x}-0000-4000-8000-000000000000")
}

pub(super) fn cdss(
    status: StatusCode,
    code: i64,
    message: &str,
    result: serde_json::Value,
    id: u64,
) -> Resp {
    json(
        status,
        serde_json::json!({"code": code, "message": message, "result": result, "requestId": request_id(id)}).to_string(),
    )
}

/// A delay between `min` and `max` for request number `n`: SplitMix64 of `n`, scaled.
pub(super) fn jitter(min: Duration, max: Duration, n: u64) -> Duration {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let spread = max.saturating_sub(min).as_nanos();
    min + Duration::from_nanos(((u128::from(z) * spread) >> 64) as u64)
}

pub(super) async fn respond(mut behaviour: Behaviour, n: u64) -> Result<Resp, Dropped> {
    let behaviour = loop {
        match behaviour {
            Behaviour::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                behaviour = *inner;
            }
            Behaviour::Jittered(min, max, inner) => {
                tokio::time::sleep(jitter(min, max, n)).await;
                behaviour = *inner;
            }
            other => break other,
        }
    };
    Ok(match behaviour {
        Behaviour::Ready => cdss(StatusCode::OK, 0, "SUCCESS", true.into(), n),
        Behaviour::NotReady => cdss(StatusCode::OK, 0, "SUCCESS", false.into(), n),
        // Unwrapped by the loop above; answered as ready if they ever got here.
        Behaviour::Slow(..) | Behaviour::Jittered(..) => {
            cdss(StatusCode::OK, 0, "SUCCESS", true.into(), n)
        }
        Behaviour::Raw(raw) => {
            let mut r = Response::new(Full::new(Bytes::from(raw.body)));
            *r.status_mut() =
                StatusCode::from_u16(raw.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in raw.headers {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    r.headers_mut().append(n, v);
                }
            }
            r
        }
        Behaviour::Http500Html => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1></body></html>",
            )));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Behaviour::RateLimited(retry_after) => {
            let mut r = gateway_error(
                StatusCode::TOO_MANY_REQUESTS,
                "420",
                "Rate Limited",
                "Too many requests.",
            );
            if let Some(s) = retry_after {
                r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Behaviour::MalformedJson => json(
            StatusCode::OK,
            r#"{"code":0,"message":"SUCCESS","result":tru"#.into(),
        ),
        Behaviour::DropConnection => return Err(Dropped),
        Behaviour::Oversized(len) => {
            let mut body = String::with_capacity(len);
            body.push_str(r#"{"code":0,"message":""#);
            body.extend(std::iter::repeat_n('x', len.saturating_sub(body.len() + 3)));
            body.push_str(r#""}"#);
            json(StatusCode::OK, body)
        }
        Behaviour::UnknownNumber(status) => cdss(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            3,
            "Invalid Service Group Instance No",
            serde_json::Value::Null,
            n,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_answers_between_the_bounds() {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(80));
        let delays: Vec<Duration> = (0..1000).map(|n| jitter(min, max, n)).collect();
        assert!(delays.iter().all(|d| *d >= min && *d < max));
        // Spread out: every 10 ms bucket of the 60 ms range gets a share.
        for k in 0..6u32 {
            let lo = min + Duration::from_millis(10) * k;
            let hi = lo + Duration::from_millis(10);
            let n = delays.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((100..=240).contains(&n), "{lo:?}..{hi:?}: {n}");
        }
    }
}
