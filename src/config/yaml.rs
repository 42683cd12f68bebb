//! Where in a YAML file a problem is: the error type both config files use, and the helpers that
//! locate a value (the parser's own position, a scalar's position while it is parsed, or a key
//! found in the text for problems seen after parsing); with the `scalar!` types built on them
//! (such as [`FileName`]).
//!
//! Shared by the exporter's config and `--web.config.file`. No I/O.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};

/// A configuration error, located as precisely as the parser allows: `FILE[:LINE:COLUMN]: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), location.map_or(String::new(), |(l, c)| format!(":{l}:{c}")))]
pub struct ConfigError {
    /// The config file (or `<inline>` for strings).
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong, starting with the field path (`clusters[1].region: ...`).
    pub message: String,
}

impl ConfigError {
    /// An error in `file` at `location` (`None`: about the whole file, it cannot be read, say).
    pub(crate) fn new(file: &Path, location: Option<(usize, usize)>, message: String) -> Self {
        Self {
            file: file.to_path_buf(),
            location,
            message,
        }
    }
}

/// The parser's error, with its location up front instead of appended to the message.
pub(crate) fn yaml_error(file: &Path, e: &yaml_serde::Error) -> ConfigError {
    let location = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some((line, col)) = location {
        // The parser appends its own " at line L column C"; we print the location up front instead.
        for suffix in [
            format!(" at line {line} column {col}"),
            format!(" at position {}", e.location().map_or(0, |l| l.index())),
        ] {
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
    }
    if message.contains("EOF while parsing") {
        message = "the file is empty; it needs at least a `clusters:` list".into();
    }
    ConfigError::new(file, location, message)
}

/// Parses a string scalar with `parse`. The error is raised while the parser is still on the
/// scalar, so it carries the scalar's own line and column (an error raised after
/// `String::deserialize` returns is only located at the enclosing mapping).
pub(crate) fn parse_scalar<'de, D, T, F>(
    d: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct V<F>(F, &'static str);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(parse, expecting))
}

/// `impl Deserialize` for a type read from one string scalar by `parse` ([`parse_scalar`], so
/// its errors carry the scalar's line and column).
macro_rules! scalar {
    ($t:ty, $expecting:literal, $parse:expr) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::yaml::parse_scalar(d, $expecting, $parse)
            }
        }
    };
}
pub(crate) use scalar;

/// A non-empty path (`ca_file`, and the web config's files).
pub(crate) struct FileName(pub(crate) PathBuf);

scalar!(FileName, "a file name", |s| match s.trim().is_empty() {
    true => Err("must not be empty".into()),
    false => Ok(FileName(PathBuf::from(s))),
});

/// Where a top-level `key:` starts (line, column 1), for cross-field errors.
pub(crate) fn top_level_line(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| (i + 1, 1))
}

/// Where `key:` is written at any depth (line, column of its value, 1-based), for errors found
/// after parsing.
pub(crate) fn key_location(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let start = line.len() - line.trim_start().len();
        let value = line[start..]
            .strip_prefix(key)?
            .strip_prefix(':')?
            .trim_start();
        let column = match value {
            "" => start,
            _ => line.len() - value.len(),
        };
        Some((i + 1, column + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let text = "interval: 1m\ngate:\n  max_age: 5m\n";
        assert_eq!(top_level_line(text, "gate"), Some((2, 1)));
        assert_eq!(top_level_line(text, "max_age"), None);
        assert_eq!(key_location(text, "max_age"), Some((3, 12)));
        assert_eq!(key_location(text, "gate"), Some((2, 1)));
    }
}
