//! Typed response bodies straight to JSON bytes, byte for byte what serializing them to a
//! `serde_json::Value` first and then to bytes writes.
//!
//! Generated handlers answer with typed models. Going through a `Value` (a map per object, a
//! `String` per key) and then to bytes was most of the cost of a list answer and a tenth of a
//! small one (docs/benchmarks.md). Writing the bytes directly differs from that path in two
//! ways, and [`to_vec_as_value_would`] removes both:
//!
//! - an `f32` goes into a `Value` as the `f64` it converts to (`0.1f32` reads
//!   `0.10000000149011612`), where serde_json alone writes its shortest `f32` form (`0.1`):
//!   here it is written as the `f64`, like the `Value` path;
//! - a `Value` object keeps one entry per key (the last value wins), where a struct with a
//!   flattened map may write a key twice: here a repeated key in an object gives up (`None`)
//!   and the caller takes the `Value` path.

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use std::cell::RefCell;
use std::io::{self, Write};

/// The JSON of `value`, as `serde_json::to_vec(&serde_json::to_value(value)?)` writes it;
/// `None` when the direct bytes would differ (a key repeated in an object) or serializing
/// fails (the caller's `Value` path then reports the error).
pub(crate) fn to_vec_as_value_would<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    thread_local! {
        /// Reused: allocating the key lists per answer was a third of the cost of a small one.
        static SCRATCH: RefCell<Keys> = RefCell::default();
    }
    let write = |keys: &mut Keys| {
        keys.clear();
        let mut out = Vec::with_capacity(128);
        let formatter = AsValue {
            keys,
            in_key: false,
        };
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut serializer).ok().map(|()| out)
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut keys) => write(&mut keys),
        // A `Serialize` that serializes a reply itself: not worth sharing.
        Err(_) => write(&mut Keys::default()),
    })
}

/// The keys of the objects being written.
#[derive(Default)]
struct Keys {
    /// Their text, one after the other.
    text: Vec<u8>,
    /// Where each key starts in `text`.
    starts: Vec<usize>,
    /// For each object being written (innermost last), the index of its first key in
    /// `starts`.
    objects: Vec<usize>,
}

impl Keys {
    fn clear(&mut self) {
        self.text.clear();
        self.starts.clear();
        self.objects.clear();
    }
}

/// Compact JSON, `f32` written as `f64`, and an error on a key repeated within an object.
struct AsValue<'a> {
    keys: &'a mut Keys,
    in_key: bool,
}

fn repeated_key() -> io::Error {
    io::Error::other("a key is repeated in an object")
}

impl Formatter for AsValue<'_> {
    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        CompactFormatter.write_f64(writer, f64::from(value))
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.keys.objects.push(self.keys.starts.len());
        CompactFormatter.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        let keys = &mut *self.keys;
        if let Some(first) = keys.objects.pop() {
            if let Some(&start) = keys.starts.get(first) {
                keys.text.truncate(start);
            }
            keys.starts.truncate(first);
        }
        CompactFormatter.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_key = true;
        self.keys.starts.push(self.keys.text.len());
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.in_key = false;
        // A key written other than as string fragments (a number key) records no text: two
        // of them look alike, which errs on the safe side (the `Value` path is taken).
        let keys = &*self.keys;
        let first = keys.objects.last().copied().unwrap_or(0);
        if let Some((&this, earlier)) = keys.starts.split_last() {
            let key = keys.text.get(this..).unwrap_or_default();
            let mut starts = earlier.iter().skip(first).peekable();
            while let Some(&start) = starts.next() {
                let end = starts.peek().map_or(this, |&&next| next);
                if keys.text.get(start..end) == Some(key) {
                    return Err(repeated_key());
                }
            }
        }
        CompactFormatter.end_object_key(writer)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.in_key {
            self.keys.text.extend_from_slice(fragment.as_bytes());
        }
        writer.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        if self.in_key {
            // The character the escape stands for: keys compare by their text.
            self.keys.text.push(match &char_escape {
                CharEscape::Quote => b'"',
                CharEscape::ReverseSolidus => b'\\',
                CharEscape::Solidus => b'/',
                CharEscape::Backspace => 0x08,
                CharEscape::FormFeed => 0x0C,
                CharEscape::LineFeed => b'\n',
                CharEscape::CarriageReturn => b'\r',
                CharEscape::Tab => b'\t',
                CharEscape::AsciiControl(byte) => *byte,
            });
        }
        CompactFormatter.write_char_escape(writer, char_escape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn via_value<T: Serialize>(value: &T) -> Vec<u8> {
        serde_json::to_value(value)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_default()
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Kind {
        Small,
        Big { size: f32 },
    }

    #[derive(Serialize)]
    struct Inner {
        ratio: f32,
        exact: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        missing: Option<i64>,
        kind: Kind,
        other: Kind,
    }

    #[derive(Serialize)]
    struct Outer {
        id: u64,
        negative: i32,
        name: String,
        tags: Vec<String>,
        inner: Inner,
        nested: Vec<Inner>,
        map: BTreeMap<String, f32>,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
        nothing: Option<()>,
        bytes: Vec<u8>,
        weird: f32,
    }

    fn inner(ratio: f32) -> Inner {
        Inner {
            ratio,
            exact: 0.1,
            missing: None,
            kind: Kind::Small,
            other: Kind::Big { size: 1e-7 },
        }
    }

    fn outer(extra: &[(&str, serde_json::Value)]) -> Outer {
        Outer {
            id: u64::MAX,
            negative: -7,
            name: "a \"quoted\" \\ name\n\u{1}é😀".into(),
            tags: vec!["x".into(), String::new()],
            inner: inner(0.1),
            nested: vec![inner(3.0), inner(f32::NAN), inner(f32::INFINITY)],
            map: [("k\"ey".to_owned(), 2.5f32), ("\t".to_owned(), 0.3f32)]
                .into_iter()
                .collect(),
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            nothing: None,
            bytes: vec![0, 255],
            weird: 16_777_217.0,
        }
    }

    #[test]
    fn the_bytes_are_those_of_the_value_path() {
        for value in [
            outer(&[]),
            outer(&[("more", serde_json::json!({"a": [1, 2.5, null]}))]),
            // Keys that look alike once escaped, in different objects: not repeats.
            outer(&[
                ("ratio", serde_json::json!(1)),
                ("k\"ey", serde_json::json!(2)),
            ]),
        ] {
            let direct = to_vec_as_value_would(&value);
            assert_eq!(direct.as_deref(), Some(&via_value(&value)[..]));
        }
    }

    #[test]
    fn a_repeated_key_takes_the_value_path() {
        // The flattened map holds a key of a declared field: the direct bytes would hold
        // `name` twice, the `Value` once.
        assert_eq!(
            to_vec_as_value_would(&outer(&[("name", serde_json::json!("again"))])),
            None
        );
        // Also when the repeat is in a nested object, and after escapes.
        let mut nested = BTreeMap::new();
        nested.insert("x", outer(&[("tags", serde_json::json!([]))]));
        assert_eq!(to_vec_as_value_would(&nested), None);
        assert_eq!(
            to_vec_as_value_would(&outer(&[("weird", serde_json::json!(1))])),
            None
        );
    }
}
