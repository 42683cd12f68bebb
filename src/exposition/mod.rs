//! `/metrics` content: the exporter's state as Prometheus metric families, and the text (plain
//! or gzipped) a scrape gets. No HTTP, no network, no global registry; the only reads outside
//! memory are the process collector's, of `/proc/self`.
//!
//! - `families`: the catalogue of every family (name, help, type);
//! - `collect`: [`Metrics`], a `prometheus` collector that reads the state when the registry
//!   gathers (no second copy of the state is kept);
//! - here: [`Exposition`], a registry of that collector and the crate's process collector
//!   (`process_*`, on Linux), written with the crate's `TextEncoder`. Every scrape gets a text
//!   rendered after it arrived: one render at a time, shared by the scrapes that waited for it.

mod collect;
mod families;
#[cfg(test)]
mod tests;

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::{Registry, TextEncoder};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use self::collect::Metrics;

/// `Content-Type` of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// gzip level: the fastest. Exposition text is so repetitive that level 1 already shrinks it
/// most of the way, and higher levels cost several times the CPU (BENCHMARKS.md).
const GZIP_LEVEL: u32 = 1;

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

/// Which encoding of the body a scraper gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The text as is.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// The registry `/metrics` serves: owned by the server, never global.
#[derive(Debug)]
pub struct Exposition {
    /// [`Metrics`] and, on Linux, the process collector.
    registry: Registry,
    /// The text of the last render and when that render began. Held while rendering, so scrapes
    /// that arrive during a render wait, and share the next one (which begins after they came).
    latest: Mutex<(Bytes, Instant)>,
}

impl Exposition {
    /// A registry of `metrics` and the process collector. Fails only if two families had the
    /// same name (a unit test registers them all).
    pub fn new(metrics: Metrics) -> prometheus::Result<Self> {
        let registry = Registry::new();
        registry.register(Box::new(metrics.with_descs()?))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            latest: Mutex::new((Bytes::new(), Instant::now())),
        })
    }

    /// The text exposition as of now, in `wanted` encoding, and the encoding it is actually in
    /// (gzip falls back to the text in the unlikely case compression fails).
    pub async fn encode(&self, wanted: Encoding) -> prometheus::Result<(Bytes, Encoding)> {
        let text = self.text().await?;
        if wanted == Encoding::Gzip {
            let mut gz = GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL));
            match gz.write_all(&text).and_then(|()| gz.finish()) {
                Ok(gz) => return Ok((gz.into(), Encoding::Gzip)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot gzip the exposition; serving it uncompressed");
                }
            }
        }
        Ok((text, Encoding::Identity))
    }

    /// The text: the last one if its render began after this scrape arrived, else a new render.
    async fn text(&self) -> prometheus::Result<Bytes> {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if latest.1 > arrived && !latest.0.is_empty() {
            return Ok(latest.0.clone());
        }
        // The last text's buffer is written over when no response holds it any more: a new
        // large buffer per render would grow the allocator's heap (RSS) under many scrapers.
        let last = std::mem::take(&mut latest.0);
        let mut buf = last.try_into_mut().map_or_else(
            |last| Vec::with_capacity(last.len() + last.len() / 8),
            Vec::from,
        );
        buf.clear();
        // Empty, so valid UTF-8: the encoder appends to a `String`, cheaper than through a writer.
        let mut text = String::from_utf8(buf).unwrap_or_default();
        let began = Instant::now();
        TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text)?;
        *latest = (Bytes::from(text), began);
        Ok(latest.0.clone())
    }
}
