//! A faster writer for the one JSON log line per request, byte for byte what
//! `tracing_subscriber`'s JSON format (`json().flatten_event(true)`) writes for it.
//!
//! The stock JSON formatter goes through serde_json, a `fmt::Write` -> `io::Write` adaptor that
//! re-checks UTF-8 on every piece, and `fmt` for the timestamp: about a quarter of the CPU of a
//! `GET /ping` (callgrind; see docs/benchmarks.md). This writer handles exactly the events
//! whose layout it knows (the `klue::request` line, outside any span) and hands every other
//! event to the stock formatter, so nothing else changes. The unit tests compare both outputs.

use std::fmt::{self, Write as _};
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

/// `{"timestamp":…,"level":…,<fields>,"target":…}` and a newline, as the stock format writes
/// it for an event outside any span.
fn write_line(out: &mut String, now: std::time::SystemTime, event: &Event<'_>) -> fmt::Result {
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, now)?;
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
        self.entry(field, |out| write!(out, "{value}"));
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
            if !value.is_finite() {
                // serde_json writes NaN and infinities as null.
                out.push_str("null");
                return Ok(());
            }
            // serde_json's own float formatting (ryu), into a stack buffer.
            let mut buffer = [0u8; 32];
            let mut cursor = std::io::Cursor::new(&mut buffer[..]);
            serde_json::ser::Formatter::write_f64(
                &mut serde_json::ser::CompactFormatter,
                &mut cursor,
                value,
            )
            .map_err(|_| fmt::Error)?;
            let len = usize::try_from(cursor.position()).map_err(|_| fmt::Error)?;
            let text = buffer
                .get(..len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or(fmt::Error)?;
            out.push_str(text);
            Ok(())
        });
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

fn write_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = text;
    while let Some(i) = rest.bytes().position(|b| NEEDS_ESCAPE[usize::from(b)]) {
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

/// The timestamp `tracing_subscriber::fmt::time::SystemTime` writes: RFC 3339 in UTC with
/// microseconds, e.g. `2026-11-28T20:40:00.123456Z`. Same civil-date arithmetic as its
/// `DateTime` (days since the epoch to year, month, day).
fn write_timestamp(out: &mut String, now: std::time::SystemTime) -> fmt::Result {
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
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = u32::try_from(secs.rem_euclid(86_400)).map_err(|_| fmt::Error)?;
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => {
            let mut digits = *b"0000";
            put_digits(&mut digits, year);
            out.push_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?);
        }
        // Not this millennium: the general formatting, as the stock timer writes it.
        _ if year > 9999 => write!(out, "+{year}")?,
        _ => write!(out, "{year:05}")?,
    }
    let mut text = *b"-00-00T00:00:00.000000Z";
    let fields: [(usize, usize, u32); 6] = [
        (1, 3, month),
        (4, 6, day),
        (7, 9, of_day / 3600),
        (10, 12, of_day / 60 % 60),
        (13, 15, of_day % 60),
        (16, 22, nanos / 1_000),
    ];
    for (from, to, value) in fields {
        if let Some(slots) = text.get_mut(from..to) {
            put_digits(slots, value);
        }
    }
    out.push_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
    Ok(())
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
    fn timestamps_match_the_stock_timer() {
        let now = std::time::SystemTime::now();
        let mut ours = String::new();
        write_timestamp(&mut ours, now).unwrap_or_default();
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
            )
            .unwrap_or_default();
            assert_eq!(text, expected);
        }
        let mut text = String::new();
        write_timestamp(&mut text, UNIX_EPOCH + Duration::new(1, 987_654_321)).unwrap_or_default();
        assert_eq!(text, "1970-01-01T00:00:01.987654Z");
    }
}
