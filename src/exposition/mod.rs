//! State → Prometheus text exposition (plain and gzipped). No I/O, no HTTP, no global registry.
//!
//! - [`families`]: the catalogue of every family (name, help, type);
//! - `render`: a snapshot of the state → the text; `text`: the line format and escaping;
//! - [`body`]: bodies in 64 KiB pieces;
//! - here: [`Exposition`], the cached body.
//!
//! The text is written directly rather than through the `prometheus` crate's proto structs and
//! `TextEncoder`: building a `MetricFamily` allocates a `String` per label per sample, which
//! costs several times more per render (BENCHMARKS.md). The crate is the specification: a test
//! (`spec`) compares every family byte for byte with its encoder. The body is cached and rebuilt
//! only when the state's generation changes (and no more often than a cool-down proportional to
//! the render's cost), so a scrape usually costs one reference-count increment; the gzipped body
//! is made at most once per rendered body, on the first scrape that asks for it. Bodies are kept
//! in pieces and the render's scratch buffers are reused, so a render makes no large allocation:
//! peak memory stays flat however often the state changes.

pub mod body;
pub mod families;
mod render;
#[cfg(test)]
mod spec;
mod text;

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;

use self::body::{Body, Chunks};
use self::render::Scratch;
use crate::credentials::StatusBoard;
use crate::ncp::usage::ApiUsage;
use crate::reload::LiveSettings;
use crate::state::State;

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Version and git revision baked in at build time, for `cdss_exporter_build_info`.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    /// Crate version.
    pub version: &'static str,
    /// Git commit the binary was built from, or "unknown".
    pub revision: &'static str,
}

impl BuildInfo {
    /// This binary's build info.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("CDSS_BUILD_REVISION").unwrap_or("unknown"),
        }
    }
}

/// Renders and caches the exposition.
#[derive(Debug)]
pub struct Exposition {
    /// Static labels of `cdss_exporter_build_info`.
    build: BuildInfo,
    /// The running config's interval, for `cdss_exporter_precheck_interval_seconds` (alert rules
    /// count "no answer for 3 intervals" without hard-coding it). A reload bumps the state's
    /// generation, so the cached body shows an old interval for at most the render cool-down.
    live: Option<LiveSettings>,
    /// The NCP calls made, for `cdss_exporter_api_requests_total`.
    usage: Option<Arc<ApiUsage>>,
    /// What the keyring in use says about its keys (expiry, refresh failures); its changes
    /// count as changes of the state.
    credentials: Option<StatusBoard>,
    /// The last rendered body; replaced when the state's generation moves.
    cache: Mutex<Option<Cached>>,
    /// Held while rendering or compressing, so scrapes that arrive together after a change wait
    /// for one render instead of each doing their own; it guards the render's scratch buffers.
    /// `cache` is only ever held for a clone.
    render: Mutex<Scratch>,
}

/// One rendered generation.
#[derive(Debug)]
struct Cached {
    /// `State::generation` it was rendered from.
    generation: u64,
    /// The text exposition.
    plain: Body,
    /// `plain` gzipped; made on the first scrape that asks for gzip.
    gzip: Option<Body>,
    /// Until then this body is served even if the state has changed: see [`RENDER_COOL_DOWN`].
    fresh_until: Instant,
}

/// Which encoding of the body a scraper gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The text as is.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// After a render that took `t`, the body is served for `RENDER_COOL_DOWN · t` more even if the
/// state changes, so rendering takes at most about a tenth of one core however often the state
/// changes and however many scrapers ask. With few clusters this is microseconds; at 10,000
/// clusters (a render of milliseconds, BENCHMARKS.md) a body is at most tens of milliseconds
/// older than the state. It also bounds how
/// many different bodies scrapes in flight hold at once, which is what peak memory depends on.
const RENDER_COOL_DOWN: u32 = 10;

/// gzip level: the fastest. Exposition text is so repetitive that level 1 already shrinks it
/// most of the way, and higher levels cost several times the CPU for a few percent more
/// (BENCHMARKS.md has the measured figures).
const GZIP_LEVEL: u32 = 1;

impl Exposition {
    /// An empty cache for this build.
    pub fn new(build: BuildInfo) -> Self {
        Self {
            build,
            live: None,
            usage: None,
            credentials: None,
            cache: Mutex::new(None),
            render: Mutex::default(),
        }
    }

    /// Also exposes the interval of the running config.
    pub fn with_live(mut self, live: LiveSettings) -> Self {
        self.live = Some(live);
        self
    }

    /// Also exposes the API calls counted in `usage`.
    pub fn with_usage(mut self, usage: Arc<ApiUsage>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Also exposes the keys' expiry and refresh failures.
    pub fn with_credentials(mut self, board: StatusBoard) -> Self {
        self.credentials = Some(board);
        self
    }

    /// What identifies the content: the state's generation, moved on by changes of the keys
    /// and by every API call too.
    fn generation(&self, state: &State) -> u64 {
        let keys = self.credentials.as_ref().map_or(0, StatusBoard::generation);
        let calls = self.usage.as_ref().map_or(0, |u| u.generation());
        state.generation().wrapping_add(keys).wrapping_add(calls)
    }

    /// The current exposition in `wanted` encoding, and the encoding it is actually in (gzip
    /// falls back to the text in the unlikely case compression fails).
    pub fn encoded(&self, state: &State, wanted: Encoding) -> (Body, Encoding) {
        self.encoded_at(state, wanted, Instant::now())
    }

    /// `encoded`, with the clock passed in.
    fn encoded_at(&self, state: &State, wanted: Encoding, now: Instant) -> (Body, Encoding) {
        if let Some(hit) = self.lookup(self.generation(state), wanted, now) {
            return hit;
        }
        let mut scratch = lock(&self.render);
        // Read again: another scrape may have rendered a newer state while this one waited.
        let generation = self.generation(state);
        if let Some(hit) = self.lookup(generation, wanted, now) {
            return hit;
        }
        let plain = match self.lookup(generation, Encoding::Identity, now) {
            Some((plain, _)) => plain,
            None => {
                // Rendered outside the `cache` lock, so scrapes of the cached body never wait.
                // If the state moves on meanwhile, the body is filed under the older generation
                // and rendered again once the cool-down is over.
                let started = Instant::now();
                let plain = self.render_into(&mut scratch, state);
                let finished = Instant::now();
                *lock(&self.cache) = Some(Cached {
                    generation,
                    plain: plain.clone(),
                    gzip: None,
                    fresh_until: finished + (finished - started) * RENDER_COOL_DOWN,
                });
                plain
            }
        };
        if wanted == Encoding::Identity {
            return (plain, Encoding::Identity);
        }
        let Some(gz) = gzip(&plain) else {
            return (plain, Encoding::Identity);
        };
        if let Some(c) = lock(&self.cache).as_mut() {
            if c.plain.same(&plain) {
                c.gzip = Some(gz.clone());
            }
        }
        (gz, Encoding::Gzip)
    }

    /// The cached body if it is of `generation`, or still within its cool-down.
    fn lookup(&self, generation: u64, wanted: Encoding, now: Instant) -> Option<(Body, Encoding)> {
        let cache = lock(&self.cache);
        let c = cache
            .as_ref()
            .filter(|c| c.generation == generation || now < c.fresh_until)?;
        match wanted {
            Encoding::Identity => Some((c.plain.clone(), Encoding::Identity)),
            Encoding::Gzip => c.gzip.clone().map(|g| (g, Encoding::Gzip)),
        }
    }

    /// Renders the text exposition from scratch (not cached).
    pub fn render(&self, state: &State) -> Body {
        self.render_into(&mut lock(&self.render), state)
    }

    fn render_into(&self, scratch: &mut Scratch, state: &State) -> Body {
        let interval = self.live.as_ref().map(|l| l.get().interval);
        render::render(
            scratch,
            state,
            &self.build,
            interval,
            self.usage.as_deref(),
            self.credentials.as_ref(),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `body` gzipped, or `None` if the encoder failed (it writes to memory, so it should not).
fn gzip(body: &Body) -> Option<Body> {
    let mut enc = GzEncoder::new(Chunks::new(), Compression::new(GZIP_LEVEL));
    let done = body
        .parts()
        .iter()
        .try_for_each(|p| enc.write_all(p))
        .and_then(|()| enc.finish());
    match done {
        Ok(v) => Some(v.finish()),
        Err(e) => {
            tracing::error!(error = %e, "cannot gzip the exposition; serving it uncompressed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ncp::precheck::Precheck;
    use crate::outcome::Outcome;
    use std::io::Read as _;
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};
    use tokio::time::Instant;

    pub(super) fn state(n: usize) -> State {
        if n == 0 {
            return State::new(&[]);
        }
        let mut yaml = String::from("clusters:\n");
        let regions = ["KR", "SGN", "JPN", "GOV", "FIN"];
        for i in 0..n {
            yaml.push_str(&format!(
                "  - {{name: c-{i:03}, region: {}, service_group_instance_no: {}}}\n",
                regions[i % 5],
                i + 1
            ));
        }
        State::new(&Config::parse(&yaml, Path::new("t")).unwrap().clusters)
    }

    pub(super) fn record(s: &State, name: &str, outcome: Outcome, latency: Duration, wall_ms: u64) {
        let p = Precheck {
            outcome,
            meta: crate::ncp::client::CallMeta {
                latency,
                ..Default::default()
            },
        };
        let wall = UNIX_EPOCH + Duration::from_millis(wall_ms);
        assert!(s.record(name, &p, Instant::now(), wall));
    }

    /// Every kind of outcome, several failure reasons on one cluster, and a never-checked one.
    pub(super) fn varied_state() -> State {
        let s = state(12);
        let outcomes = [
            Outcome::Ready,
            Outcome::NotReady,
            Outcome::ApiError {
                http_status: 400,
                code: 3,
                message: "Invalid".into(),
            },
            Outcome::GatewayError {
                http_status: 401,
                code: Some(200),
                message: "Authentication Failed".into(),
            },
            Outcome::GatewayError {
                http_status: 429,
                code: Some(420),
                message: "Rate Limited".into(),
            },
            Outcome::GatewayError {
                http_status: 503,
                code: None,
                message: "?".into(),
            },
            Outcome::HttpError {
                http_status: 500,
                detail: "html".into(),
            },
            Outcome::InvalidResponse {
                http_status: 200,
                detail: "x".into(),
            },
            Outcome::BodyTooLarge { limit: 1 },
            Outcome::Timeout {
                after: Duration::from_secs(10),
            },
            Outcome::ConnectionError {
                detail: "refused".into(),
            },
        ];
        for (i, o) in outcomes.into_iter().enumerate() {
            let latency = Duration::from_nanos(1 + 987_654_321 * i as u64);
            record(
                &s,
                &format!("c-{i:03}"),
                o,
                latency,
                1_754_000_000_123 + 7 * i as u64,
            );
        }
        // c-000 fails twice more, in two ways, and then is ready again.
        record(
            &s,
            "c-000",
            Outcome::BodyTooLarge { limit: 1 },
            Duration::ZERO,
            1,
        );
        let timeout = Outcome::Timeout {
            after: Duration::from_millis(1500),
        };
        record(&s, "c-000", timeout, Duration::from_millis(1500), 2);
        record(
            &s,
            "c-000",
            Outcome::Ready,
            Duration::from_micros(1234),
            1_754_000_001_999,
        );
        s
    }

    pub(super) fn text(b: &Body) -> String {
        String::from_utf8(b.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn cached_per_generation_and_gzipped_once() {
        let s = varied_state();
        let e = Exposition::new(BuildInfo::current());
        let before = std::time::Instant::now();
        let (a, enc) = e.encoded(&s, Encoding::Identity);
        assert_eq!(enc, Encoding::Identity);
        let (b, _) = e.encoded(&s, Encoding::Identity);
        assert!(a.same(&b), "second scrape reuses the body");
        let (gz, enc) = e.encoded(&s, Encoding::Gzip);
        assert_eq!(enc, Encoding::Gzip);
        let (gz2, _) = e.encoded(&s, Encoding::Gzip);
        assert!(gz.same(&gz2), "compressed once per generation");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz.to_bytes()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), &a.to_bytes()[..]);
        assert!(gz.len() * 4 < a.len(), "{} vs {}", gz.len(), a.len());

        record(&s, "c-005", Outcome::Ready, Duration::from_millis(3), 5);
        // Within the cool-down (here: a clock that has not moved since before the render) the
        // last body is still served; after it, the change is rendered.
        let (stale, _) = e.encoded_at(&s, Encoding::Identity, before);
        assert!(stale.same(&a));
        let later = std::time::Instant::now() + Duration::from_secs(3600);
        let (c, _) = e.encoded_at(&s, Encoding::Identity, later);
        assert!(!a.same(&c), "a change is rendered");
        let text = self::text(&c);
        assert!(text.contains("cdss_precheck_ok{cluster=\"c-005\",region=\"KR\"} 1\n"));
        let (gz3, _) = e.encoded_at(&s, Encoding::Gzip, later);
        assert!(!gz3.same(&gz));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz3.to_bytes()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text.as_bytes(),
            &c.to_bytes()[..],
            "the gzip is of the new body"
        );
    }

    #[test]
    fn cool_down_is_proportional_to_the_render() {
        let s = state(3);
        let e = Exposition::new(BuildInfo::current());
        let start = std::time::Instant::now();
        e.encoded(&s, Encoding::Identity);
        let took = start.elapsed();
        let fresh_until = lock(&e.cache).as_ref().unwrap().fresh_until;
        assert!(fresh_until > start);
        assert!(fresh_until <= start + took * (RENDER_COOL_DOWN + 1));
    }
}
