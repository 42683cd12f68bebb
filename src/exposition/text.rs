//! The text exposition format, line by line: `# HELP` / `# TYPE` headers, samples, escaping.
//! Writes the same bytes as the `prometheus` crate's `TextEncoder` (see `spec`).

use super::body::Chunks;
use super::families::Family;

/// A sample value. Integers are written as integers, which is what the `prometheus` crate's
/// encoder writes for whole-number floats too.
#[derive(Clone, Copy)]
pub(super) enum Value {
    Int(i64),
    Uint(u64),
    /// Finite here: latencies and Unix times.
    Float(f64),
}

/// Where text is appended: the body being rendered, or a scratch label buffer.
pub(super) trait Out {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char);
}

impl Out for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

impl Out for Chunks {
    fn push_str(&mut self, s: &str) {
        Chunks::push_str(self, s);
    }

    fn push(&mut self, c: char) {
        Chunks::push(self, c);
    }
}

/// `# HELP` and `# TYPE` lines.
pub(super) fn header(out: &mut Chunks, f: &Family) {
    out.push_str("# HELP ");
    out.push_str(f.name);
    out.push(' ');
    escape_help(out, f.help);
    out.push_str("\n# TYPE ");
    out.push_str(f.name);
    out.push(' ');
    out.push_str(f.kind);
    out.push('\n');
}

/// One sample line. `labels` is empty or an unclosed `{name="value"...`; `extra` more labels.
pub(super) fn sample(out: &mut Chunks, f: &Family, labels: &str, extra: &str, value: Value) {
    out.push_str(f.name);
    if !labels.is_empty() {
        out.push_str(labels);
        out.push_str(extra);
        out.push('}');
    }
    out.push(' ');
    match value {
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Uint(v) => out.push_str(itoa::Buffer::new().format(v)),
        // `Display` of a finite f64: the shortest text that reads back as the same number, as
        // the `prometheus` crate writes it. Writing to `Chunks` cannot fail.
        Value::Float(v) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{v}"));
        }
    }
    out.push('\n');
}

/// Appends a label value escaped per the text format: backslash, double quote and newline.
pub(super) fn escape_label_value(out: &mut impl Out, v: &str) {
    escape(out, v, true);
}

/// Appends HELP text escaped per the text format: backslash and newline.
pub(super) fn escape_help(out: &mut impl Out, v: &str) {
    escape(out, v, false);
}

fn escape(out: &mut impl Out, v: &str, quote: bool) {
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (quote && *b == b'"');
    if !v.as_bytes().iter().any(special) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values_and_help() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd é");
        assert_eq!(out, r#"a\\b\"c\nd é"#);
        out.clear();
        escape_help(&mut out, "a\\b\"c\nd");
        assert_eq!(out, r#"a\\b"c\nd"#);
    }
}
