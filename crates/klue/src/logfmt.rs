//! A faster writer for the one JSON log line per request, byte for byte what
//! `tracing_subscriber`'s JSON format (`json().flatten_event(true)`) writes for it.
//!
//! The stock JSON formatter goes through serde_json, a `fmt::Write` -> `io::Write` adaptor that
//! re-checks UTF-8 on every piece, and `fmt` for the timestamp: about a quarter of the CPU of a
//! `GET /ping` (callgrind; see docs/benchmarks.md). This writer handles exactly the events
//! whose layout it knows (the `klue::request` line, outside any span) and hands every other
//! event to the stock formatter, so nothing else changes. The unit tests compare both outputs.
//!
//! With the service's JSON logging on, [`log_request`] goes further: it writes the line
//! straight into the log sink, without a tracing event at all (still subject to the
//! `RUST_LOG` filter), which also skips tracing's dispatch and field visitors.

use crate::logsink::LogSink;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the per-request log line (`crate::middleware`).
pub(crate) const REQUEST_TARGET: &str = "klue::request";

/// `json().flatten_event(true)` with a fast path for the request line.
pub(crate) struct FastJson {
    stock: Format<Json, SystemTime>,
}

impl FastJson {
    pub(crate) fn new(stock: Format<Json, SystemTime>) -> Self {
        FastJson { stock }
    }
}

impl<S, N> FormatEvent<S, N> for FastJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The stock layout adds "span"/"spans" inside a span, and rewrites the metadata of
        // events that come from the `log` crate: leave all of those to it.
        if event.metadata().target() != REQUEST_TARGET
            || event.parent().is_some()
            || ctx.lookup_current().is_some()
        {
            return self.stock.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        write_line(&mut line, std::time::SystemTime::now(), event)?;
        writer.write_str(&line)
    }
}

/// The fields of the per-request log line (written by `crate::middleware::finish`).
pub(crate) struct RequestLine<'a> {
    /// A token: nothing in it needs escaping.
    pub(crate) method: &'a http::Method,
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    /// Latency in microseconds; written as `latency_ms`, a float.
    pub(crate) latency_us: u64,
    pub(crate) request_id: &'a str,
    /// The request id is one klue made (a UUID): nothing in it needs escaping.
    pub(crate) request_id_made: bool,
    /// The error code and error id of an error answer.
    pub(crate) error: Option<(&'a str, &'a str)>,
}

/// Set by [`crate::server::init_tracing`] when the JSON format is on: request lines are
/// written straight into it, skipping tracing's event dispatch and field visitors (about a
/// sixth of a `GET /ping`'s instructions), byte for byte as [`FastJson`] would write them.
static DIRECT: OnceLock<Direct> = OnceLock::new();

struct Direct {
    sink: LogSink,
    /// Whether the filter lets request lines through, when that cannot change (see
    /// [`write_requests_directly`]); `None`: ask the filter for each line.
    decided: Option<bool>,
}

/// Makes [`log_request`] write JSON request lines straight into `sink`. Only for the sink of
/// the global subscriber, with [`FastJson`] as its format, once that subscriber is installed.
///
/// Whether request lines pass `RUST_LOG` is decided here, once: asking the filter costs about
/// 100 instructions per request, and its answer for an event outside any span is fixed. A
/// filter with span directives (`target[span]=level`) is still asked for each line.
pub(crate) fn write_requests_directly(sink: LogSink) {
    let span_directives = std::env::var("RUST_LOG").is_ok_and(|filter| filter.contains('['));
    let decided =
        (!span_directives).then(|| tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO));
    let _ = DIRECT.set(Direct { sink, decided });
}

thread_local! {
    /// The line being written, reused (no allocation per request).
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Logs the request line: `info` level, target [`REQUEST_TARGET`], message `request`, at
/// `now` (the tracing path, without a direct sink, reads the clock itself).
pub(crate) fn log_request(now: std::time::SystemTime, line: &RequestLine<'_>) {
    if let Some(direct) = DIRECT.get() {
        // The filter (`RUST_LOG`) still decides, as it would for the event.
        let enabled = direct
            .decided
            .unwrap_or_else(|| tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO));
        if enabled {
            LINE.with_borrow_mut(|text| {
                text.clear();
                write_request_line(text, now, line);
                direct.sink.append(text.as_bytes());
            });
        }
        return;
    }
    let RequestLine {
        method,
        path,
        status,
        latency_us,
        request_id,
        request_id_made: _,
        error,
    } = *line;
    let latency_ms = millis(latency_us);
    match error {
        Some((code, error_id)) => tracing::info!(
            target: REQUEST_TARGET,
            %method, %path, status, latency_ms, %request_id,
            error = %code, %error_id,
            "request"
        ),
        None => tracing::info!(
            target: REQUEST_TARGET,
            %method, %path, status, latency_ms, %request_id,
            "request"
        ),
    }
}

/// What the stock JSON format writes for [`log_request`]'s event (outside any span).
/// Quotes are written with the constant text around them, and what cannot need escaping
/// (the method, a request id klue made) is not scanned.
fn write_request_line(out: &mut String, now: std::time::SystemTime, line: &RequestLine<'_>) {
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, now);
    out.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"method\":\"");
    out.push_str(line.method.as_str());
    out.push_str("\",\"path\":\"");
    write_escaped(out, line.path);
    out.push_str("\",\"status\":");
    push_u64(out, u64::from(line.status));
    out.push_str(",\"latency_ms\":");
    push_millis(out, line.latency_us);
    out.push_str(",\"request_id\":\"");
    if line.request_id_made {
        out.push_str(line.request_id);
    } else {
        write_escaped(out, line.request_id);
    }
    out.push('"');
    if let Some((code, error_id)) = line.error {
        out.push_str(",\"error\":");
        write_json_str(out, code);
        out.push_str(",\"error_id\":");
        write_json_str(out, error_id);
    }
    out.push_str(",\"target\":\"klue::request\"}\n");
}

/// `{"timestamp":…,"level":…,<fields>,"target":…}` and a newline, as the stock format writes
/// it for an event outside any span.
fn write_line(out: &mut String, now: std::time::SystemTime, event: &Event<'_>) -> fmt::Result {
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, now);
    out.push_str("\",\"level\":\"");
    out.push_str(event.metadata().level().as_str());
    out.push('"');
    let mut visitor = JsonVisitor {
        out,
        result: Ok(()),
    };
    event.record(&mut visitor);
    visitor.result?;
    out.push_str(",\"target\":");
    write_json_str(out, event.metadata().target());
    out.push_str("}\n");
    Ok(())
}

/// Writes each field as `,"name":value` exactly as `tracing_serde::SerdeMapVisitor` serializes
/// it through serde_json. The other `record_*` methods keep their defaults, which (as for
/// `SerdeMapVisitor`) go through `record_debug`.
struct JsonVisitor<'a> {
    out: &'a mut String,
    result: fmt::Result,
}

impl JsonVisitor<'_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_ok() {
            self.out.push(',');
            write_json_str(self.out, field.name());
            self.out.push(':');
            self.result = value(self.out);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |out| {
            out.push('"');
            write!(Escaper(out), "{value:?}")?;
            out.push('"');
            Ok(())
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |out| {
            write_json_str(out, value);
            Ok(())
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |out| {
            push_u64(out, value);
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |out| {
            out.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, |out| {
            push_f64(out, value);
            Ok(())
        });
    }
}

/// A number as serde_json writes it (`itoa`).
fn push_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// `micros` in milliseconds, as a float.
fn millis(micros: u64) -> f64 {
    // Exact below 2^53 µs (285 years).
    micros as f64 / 1000.0
}

/// [`millis`] of `micros` as [`push_f64`] writes it, from the integer: the shortest form of
/// the double nearest to a decimal with at most three fraction digits and twelve significant
/// digits is that decimal (`1.5`, `0.048`, `2.0`). Larger values, which the float would write
/// differently, go through [`push_f64`].
fn push_millis(out: &mut String, micros: u64) {
    if micros >= 1_000_000_000_000 {
        return push_f64(out, millis(micros));
    }
    push_u64(out, micros / 1000);
    out.push('.');
    let fraction = u32::try_from(micros % 1000).unwrap_or(0);
    let mut digits = *b"000";
    put_digits(&mut digits, fraction);
    let kept = match digits {
        [b'0', b'0', b'0'] => 1,
        [_, b'0', b'0'] => 1,
        [_, _, b'0'] => 2,
        _ => 3,
    };
    push_ascii(out, digits.get(..kept).unwrap_or(&digits));
}

/// A float as serde_json writes it (its `zmij` shortest round-trip form), and `null` for
/// NaN and the infinities.
fn push_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(value));
    } else {
        out.push_str("null");
    }
}

/// A JSON string literal, escaped as serde_json escapes (`"`, `\`, and control characters;
/// `\b \t \n \f \r` by name, the rest as `\u00xx`).
fn write_json_str(out: &mut String, text: &str) {
    out.push('"');
    write_escaped(out, text);
    out.push('"');
}

/// Which bytes need escaping: the control characters, `"` and `\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The index of the first byte that needs escaping. Eight bytes at a time: a request line
/// has none in the common case, and a byte-by-byte table lookup was a tenth of its cost.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// Whether a byte of `word` is zero (exact as to whether there is one).
    const fn has_zero(word: u64) -> bool {
        word.wrapping_sub(ONES) & !word & HIGHS != 0
    }
    let in_table = |from: usize, part: &[u8]| {
        part.iter()
            .position(|&b| NEEDS_ESCAPE[usize::from(b)])
            .map(|i| from + i)
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut from = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte below 0x20 (a control character; bytes >= 0x80 are excluded by `!word`),
        // a `"` or a `\`.
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
        if (control || has_zero(word ^ (ONES * 0x22)) || has_zero(word ^ (ONES * 0x5C)))
            && let Some(found) = in_table(from, chunk)
        {
            return Some(found);
        }
        from += 8;
    }
    in_table(from, chunks.remainder())
}

fn write_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = text;
    while let Some(i) = first_to_escape(rest.as_bytes()) {
        // Escaped bytes are ASCII, so `i` and `i + 1` are character boundaries.
        let (Some(before), Some(after), Some(&byte)) =
            (rest.get(..i), rest.get(i + 1..), rest.as_bytes().get(i))
        else {
            break;
        };
        out.push_str(before);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x09 => out.push_str("\\t"),
            0x0A => out.push_str("\\n"),
            0x0C => out.push_str("\\f"),
            0x0D => out.push_str("\\r"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
        rest = after;
    }
    out.push_str(rest);
}

/// A `fmt::Write` that escapes what is written into it as JSON string contents.
struct Escaper<'a>(&'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.0, s);
        Ok(())
    }
}

thread_local! {
    /// The timestamp up to the second (`2026-11-28T20:40:00.`) last written by this thread,
    /// and its second: the date arithmetic runs once a second instead of once a line.
    static SECOND: RefCell<(Option<i64>, String)> = const { RefCell::new((None, String::new())) };
}

/// The timestamp `tracing_subscriber::fmt::time::SystemTime` writes: RFC 3339 in UTC with
/// microseconds, e.g. `2026-11-28T20:40:00.123456Z`. Same civil-date arithmetic as its
/// `DateTime` (days since the epoch to year, month, day).
fn write_timestamp(out: &mut String, now: std::time::SystemTime) {
    let (secs, nanos) = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != Some(secs) {
            text.clear();
            write_second(text, secs);
            *second = Some(secs);
        }
        out.push_str(text);
    });
    let mut micros = *b"000000Z";
    if let Some(digits) = micros.get_mut(..6) {
        put_digits(digits, nanos / 1_000);
    }
    push_ascii(out, &micros);
}

/// `2026-11-28T20:40:00.`: the timestamp of `secs` (since the epoch) up to the second.
fn write_second(out: &mut String, secs: i64) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    // In 0..86_400.
    let of_day = u32::try_from(secs.rem_euclid(86_400)).unwrap_or(0);
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => {
            let mut digits = *b"0000";
            put_digits(&mut digits, year);
            push_ascii(out, &digits);
        }
        // Not this millennium: the general formatting, as the stock timer writes it.
        // (Writing to a `String` cannot fail.)
        _ if year > 9999 => {
            let _ = write!(out, "+{year}");
        }
        _ => {
            let _ = write!(out, "{year:05}");
        }
    }
    let mut text = *b"-00-00T00:00:00.";
    let fields: [(usize, usize, u32); 5] = [
        (1, 3, month),
        (4, 6, day),
        (7, 9, of_day / 3600),
        (10, 12, of_day / 60 % 60),
        (13, 15, of_day % 60),
    ];
    for (from, to, value) in fields {
        if let Some(slots) = text.get_mut(from..to) {
            put_digits(slots, value);
        }
    }
    push_ascii(out, &text);
}

/// Bytes known to be ASCII digits and punctuation.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    // Byte by byte: checking a few known-ASCII bytes as UTF-8 cost more than pushing them.
    out.extend(bytes.iter().map(|&b| char::from(b)));
}

/// Writes `value` into `slots` as zero-padded decimal digits (its low digits if too long).
fn put_digits(slots: &mut [u8], mut value: u32) {
    for slot in slots.iter_mut().rev() {
        *slot = b"0123456789"[(value % 10) as usize];
        value /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::time::FormatTime;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn text(&self) -> String {
            let bytes = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            String::from_utf8(bytes).unwrap_or_default()
        }
    }

    /// Logs `emit` with the stock formatter and with ours; returns both outputs with the
    /// timestamps cut out.
    fn both(emit: impl Fn()) -> (String, String) {
        let stock = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(stock.clone())
            .json()
            .flatten_event(true)
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let fast = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(fast.clone())
            .json()
            .flatten_event(true)
            .map_event_format(FastJson::new)
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let strip = |text: String| {
            text.lines()
                .map(|line| {
                    let value: serde_json::Value =
                        serde_json::from_str(line).unwrap_or(serde_json::Value::Null);
                    let ts = value["timestamp"].as_str().unwrap_or("").to_owned();
                    assert_eq!(ts.len(), 27, "{line}");
                    line.replacen(&ts, "T", 1)
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        (strip(stock.text()), strip(fast.text()))
    }

    #[test]
    fn request_lines_match_the_stock_json_format() {
        let (stock, fast) = both(|| {
            let method = http::Method::GET;
            let path = "/v1/hello/b\"o\\b\u{1}\u{7f}é\n\t/";
            tracing::info!(target: "klue::request", %method, %path, status = 200u16,
                latency_ms = 0.123_456_f64, request_id = %"abc", "request");
            tracing::info!(target: "klue::request", %method, %path, status = 500u16,
                latency_ms = 1234.5_f64, request_id = %"x", error = %"UNHANDLED_SERVER_ERROR",
                error_id = %"e1", "request");
            tracing::info!(target: "klue::request", latency_ms = 1e-7_f64, big = 1e300_f64,
                nan = f64::NAN, inf = f64::INFINITY, whole = 3.0_f64, neg = -7i64,
                yes = true, s = "plain \"str\"", dbg = ?Some("x"), wide = 7u128, "request");
            tracing::warn!(target: "klue::request", "with {} args", 2);
        });
        assert_eq!(stock.lines().count(), 4);
        assert_eq!(stock, fast);
    }

    #[test]
    fn milliseconds_are_written_as_the_float_would_be() {
        let samples = (0..200_000u64)
            .chain((0..2_000).map(|i| i * 999_983))
            .chain([
                999_999_999_999,
                999_999_999_990,
                123_456_789_012,
                1_000_000_000_000,
                u64::MAX,
            ]);
        for micros in samples {
            let mut direct = String::new();
            push_millis(&mut direct, micros);
            let mut float = String::new();
            push_f64(&mut float, millis(micros));
            assert_eq!(direct, float, "{micros} µs");
        }
    }

    #[test]
    fn direct_request_lines_match_the_stock_json_format() {
        let lines = [
            RequestLine {
                method: &http::Method::GET,
                path: "/ping",
                status: 200,
                latency_us: 80,
                request_id: "7e185e74-436d-461b-b27c-d8eeee3b6390",
                request_id_made: true,
                error: None,
            },
            RequestLine {
                method: &http::Method::POST,
                path: "/v1/b\"o\\b\u{1}\u{7f}é\n\t/",
                status: 500,
                latency_us: 1_234_500,
                request_id: "x\"y",
                request_id_made: false,
                error: Some(("UNHANDLED_SERVER_ERROR", "e1")),
            },
            RequestLine {
                method: &http::Method::PATCH,
                path: "/",
                status: 404,
                latency_us: 0,
                request_id: "",
                request_id_made: false,
                error: Some(("", "")),
            },
            RequestLine {
                method: &http::Method::from_bytes(b"X-CUSTOM").unwrap_or_default(),
                path: "/x",
                status: 200,
                latency_us: 5_000_000_000_000,
                request_id: "r",
                request_id_made: false,
                error: None,
            },
        ];
        // No direct sink in unit tests: `log_request` goes through tracing.
        let (stock, _) = both(|| {
            lines
                .iter()
                .for_each(|line| log_request(std::time::SystemTime::now(), line));
        });
        let mut direct = String::new();
        for line in &lines {
            let mut text = String::new();
            write_request_line(&mut text, std::time::SystemTime::now(), line);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let ts = value["timestamp"].as_str().unwrap_or("").to_owned();
            assert_eq!(ts.len(), 27, "{text}");
            direct.push_str(&text.replacen(&ts, "T", 1));
        }
        assert_eq!(stock.lines().count(), 4, "{stock}");
        assert_eq!(stock, direct.trim_end());
    }

    #[test]
    fn other_events_and_spans_use_the_stock_format() {
        let (stock, fast) = both(|| {
            tracing::info!(addr = %"0.0.0.0:8080", "listening");
            let span = tracing::info_span!("outer", id = 7);
            let _entered = span.enter();
            tracing::info!(target: "klue::request", status = 200u16, "request");
        });
        assert!(stock.contains("\"spans\""), "{stock}");
        assert_eq!(stock, fast);
    }

    #[test]
    fn escaping_matches_serde_json() {
        let all: String = (0u8..=0x7f).map(char::from).chain("é€😀".chars()).collect();
        let mut ours = String::new();
        write_json_str(&mut ours, &all);
        assert_eq!(ours, serde_json::to_string(&all).unwrap_or_default());
    }

    #[test]
    fn escaping_finds_every_special_byte_at_every_offset() {
        for special in (0u8..0x20).chain([b'"', b'\\']).map(char::from) {
            for len in 0..20 {
                for at in 0..=len {
                    let text: String = "é"
                        .chars()
                        .chain(std::iter::repeat_n('a', len))
                        .enumerate()
                        .map(|(i, c)| if i == at + 1 { special } else { c })
                        .collect();
                    let mut ours = String::new();
                    write_json_str(&mut ours, &text);
                    assert_eq!(ours, serde_json::to_string(&text).unwrap_or_default());
                }
            }
        }
    }

    #[test]
    fn timestamps_match_the_stock_timer() {
        let now = std::time::SystemTime::now();
        let mut ours = String::new();
        write_timestamp(&mut ours, now);
        let mut stock = String::new();
        SystemTime
            .format_time(&mut Writer::new(&mut stock))
            .unwrap_or_default();
        // Same format and same second (the stock timer reads the clock itself).
        assert_eq!(ours.len(), stock.len());
        assert_eq!(ours.get(..17), stock.get(..17));
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (1_795_898_096, "2026-11-28T20:34:56.000000Z"),
            (253_402_300_799, "9999-12-31T23:59:59.000000Z"),
        ] {
            let mut text = String::new();
            write_timestamp(
                &mut text,
                UNIX_EPOCH + Duration::new(secs, 0) + Duration::from_micros(0),
            );
            assert_eq!(text, expected);
        }
        let mut text = String::new();
        write_timestamp(&mut text, UNIX_EPOCH + Duration::new(1, 987_654_321));
        assert_eq!(text, "1970-01-01T00:00:01.987654Z");
    }
}
