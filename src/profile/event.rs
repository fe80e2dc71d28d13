//! The fields of one trace event that the tables use, read straight from its JSON bytes.
//!
//! Torch-profiler events are flat objects with a handful of wanted keys and large ignored
//! `args` arrays, so a general JSON deserializer spends most of its time validating UTF-8
//! in keys and walking values nobody reads. [`read_fast`] reads the common shape in one
//! strict pass; whenever an event is not that shape (escapes in a wanted string or a key,
//! a duplicate wanted key, a wanted value of an odd type, deep nesting) it answers `None`
//! and the caller parses the event with serde_json instead, which also gives the error
//! message for invalid JSON. Anything [`read_fast`] accepts is valid JSON that serde_json
//! reads to the same fields (property-tested in `ingest`).

use std::borrow::Cow;

use super::simd::string_len;

/// An event's category, as far as the tables care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cat {
    Kernel,
    Memset,
    Memcpy,
    Runtime,
    CpuOp,
    Python,
    UserAnnotation,
    GpuUserAnnotation,
    Other,
}

impl Cat {
    /// The category of a `cat` value (both torch's and older Kineto spellings).
    pub(crate) fn of(cat: &[u8]) -> Cat {
        match cat {
            b"kernel" | b"Kernel" => Cat::Kernel,
            b"gpu_memset" | b"Memset" => Cat::Memset,
            b"gpu_memcpy" | b"Memcpy" => Cat::Memcpy,
            b"cuda_runtime" | b"cuda_driver" | b"Runtime" | b"Driver" => Cat::Runtime,
            b"cpu_op" | b"Operator" => Cat::CpuOp,
            b"python_function" => Cat::Python,
            b"user_annotation" => Cat::UserAnnotation,
            b"gpu_user_annotation" => Cat::GpuUserAnnotation,
            _ => Cat::Other,
        }
    }
}

/// A `pid`/`tid`: torch writes integers, some tools strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) enum IdValue {
    #[default]
    None,
    Int(i64),
    Str(Box<str>),
}

/// An event name: checked text from serde_json, or raw bytes without escapes whose UTF-8
/// is checked only when the name is new to the interner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NameText<'a> {
    Text(Cow<'a, str>),
    Unchecked(&'a [u8]),
}

/// The `args` the tables use.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EventArgs {
    pub external_id: Option<i64>,
    pub correlation: Option<i64>,
    pub stream: Option<i64>,
    pub device: Option<i64>,
    /// Product of `grid` when it is an array of one to three non-negative integers.
    pub grid_blocks: Option<u64>,
}

/// The fields of one event the tables use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventFields<'a> {
    /// `ph` is `"X"` (a complete event with a duration).
    pub complete: bool,
    pub cat: Option<Cat>,
    pub name: Option<NameText<'a>>,
    pub pid: Option<IdValue>,
    pub tid: Option<IdValue>,
    pub ts: Option<f64>,
    pub dur: Option<f64>,
    pub args: Option<EventArgs>,
}

/// Deepest nesting the fast path walks (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Reads `bytes` (one JSON object) the fast way, or `None` when serde_json must decide.
pub(crate) fn read_fast(bytes: &[u8]) -> Option<EventFields<'_>> {
    let mut r = Reader { b: bytes, i: 0 };
    let mut ev = EventFields {
        complete: false,
        cat: None,
        name: None,
        pid: None,
        tid: None,
        ts: None,
        dur: None,
        args: None,
    };
    let mut seen = Seen::default();
    r.ws();
    r.object(|r, key| {
        match key {
            b"ph" => {
                seen.first(1)?;
                if let Some(ph) = r.null_or(|r| r.plain_string())? {
                    std::str::from_utf8(ph).ok()?;
                    ev.complete = ph == b"X";
                }
            }
            b"cat" => {
                seen.first(2)?;
                ev.cat = match r.null_or(|r| r.plain_string())? {
                    None => None,
                    Some(c) => {
                        let cat = Cat::of(c);
                        if cat == Cat::Other {
                            std::str::from_utf8(c).ok()?;
                        }
                        Some(cat)
                    }
                };
            }
            b"name" => {
                seen.first(4)?;
                ev.name = r.null_or(|r| r.plain_string())?.map(NameText::Unchecked);
            }
            b"pid" => {
                seen.first(8)?;
                ev.pid = r.null_or(|r| r.id_value())?;
            }
            b"tid" => {
                seen.first(16)?;
                ev.tid = r.null_or(|r| r.id_value())?;
            }
            b"ts" => {
                seen.first(32)?;
                ev.ts = r.number_or_text()?;
            }
            b"dur" => {
                seen.first(64)?;
                ev.dur = r.number_or_text()?;
            }
            b"args" => {
                seen.first(128)?;
                ev.args = r.null_or(|r| r.args())?;
            }
            _ => r.skip_value(0)?,
        }
        Some(())
    })?;
    r.ws();
    (r.i == bytes.len()).then_some(ev)
}

/// Wanted keys met so far in one object, one bit each: serde_json refuses a struct field
/// given twice, so a second one sends the event to it.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    /// `Some` the first time `bit` is met.
    fn first(&mut self, bit: u8) -> Option<()> {
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh.then_some(())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    /// `null`, or the value `read` reads.
    fn null_or<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string without escapes or control characters; its bytes between the quotes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        let len = string_len(&self.b[start..])?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        Some(&self.b[start..start + len])
    }

    /// An object key without escapes, valid UTF-8 (serde_json checks every key it matches
    /// against field names).
    fn key(&mut self) -> Option<&'a [u8]> {
        let k = self.plain_string()?;
        (k.is_ascii() || std::str::from_utf8(k).is_ok()).then_some(k)
    }

    /// Skips a string with escapes (checked as serde_json checks them).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let at = self.i + string_len(&self.b[self.i..])?;
            self.i = at + 1;
            if self.b[at] == b'"' {
                return Some(());
            }
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let hex = self.b.get(self.i..self.i + 4)?;
                    let mut unit = 0u32;
                    for &h in hex {
                        unit = unit * 16 + (h as char).to_digit(16)?;
                    }
                    // Lone surrogates are a serde_json error; leave them to it.
                    if (0xD800..0xE000).contains(&unit) {
                        return None;
                    }
                    self.i += 4;
                }
                _ => return None,
            }
        }
    }

    /// Skips a number, checking its grammar only (serde_json does not range-check the
    /// numbers it ignores either).
    fn skip_number(&mut self) -> Option<()> {
        self.number_text().map(|_| ())
    }

    /// A JSON number's text (grammar checked).
    fn number_text(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        Some(&self.b[start..self.i])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// A number as serde_json hands it to a visitor: integers that fit i64/u64 exactly,
    /// anything else as a (correctly rounded) f64.
    fn number(&mut self) -> Option<Number> {
        let digits = self.number_text()?;
        if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
            // Up to 18 digits always fit an i64.
            let v = digits
                .iter()
                .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
            return Some(Number::Int(v));
        }
        // ASCII by construction.
        let text = std::str::from_utf8(digits).ok()?;
        let integral = !text.contains(['.', 'e', 'E']);
        if integral {
            if let Ok(v) = text.parse::<i64>() {
                return Some(Number::Int(v));
            }
            if let Ok(v) = text.parse::<u64>() {
                return Some(Number::UInt(v));
            }
        }
        let f = text.parse::<f64>().ok()?;
        // serde_json refuses numbers out of f64 range.
        f.is_finite().then_some(Number::Float(f))
    }

    /// `ts`/`dur`-style value: a number, a numeric string, or null.
    fn number_or_text(&mut self) -> Option<Option<f64>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|_| None),
            b'"' => {
                let s = std::str::from_utf8(self.plain_string()?).ok()?;
                Some(s.trim().parse().ok())
            }
            _ => Some(Some(self.number()?.as_f64())),
        }
    }

    fn id_value(&mut self) -> Option<IdValue> {
        match self.peek()? {
            b'"' => {
                let s = std::str::from_utf8(self.plain_string()?).ok()?;
                Some(IdValue::Str(s.into()))
            }
            _ => Some(IdValue::Int(match self.number()? {
                Number::Int(v) => v,
                Number::UInt(v) => v as i64,
                Number::Float(f) => f as i64,
            })),
        }
    }

    fn args(&mut self) -> Option<EventArgs> {
        let mut args = EventArgs::default();
        let mut seen = Seen::default();
        self.object(|r, key| {
            let (bit, slot) = match key {
                b"External id" => (1, &mut args.external_id),
                b"correlation" => (2, &mut args.correlation),
                b"stream" => (4, &mut args.stream),
                b"device" => (8, &mut args.device),
                b"grid" => {
                    seen.first(16)?;
                    args.grid_blocks = r.grid_blocks()?;
                    return Some(());
                }
                _ => return r.skip_value(1),
            };
            seen.first(bit)?;
            *slot = r.number_or_text()?.map(|f| f as i64);
            Some(())
        })?;
        Some(args)
    }

    /// A kernel's `grid`: the product of an array of one to three non-negative integers,
    /// `None` for any other (valid) value, as [`grid_blocks_of`] reads it.
    fn grid_blocks(&mut self) -> Option<Option<u64>> {
        if self.peek()? != b'[' {
            self.skip_value(1)?;
            return Some(None);
        }
        let mut dims = 0usize;
        let mut product = Some(1u64);
        self.members(b'[', b']', |r| {
            dims += 1;
            let dim = match r.peek()? {
                b'-' | b'0'..=b'9' => match r.number()? {
                    Number::Int(v) => u64::try_from(v).ok(),
                    Number::UInt(v) => Some(v),
                    Number::Float(_) => None,
                },
                _ => {
                    r.skip_value(2)?;
                    None
                }
            };
            product = product.zip(dim).map(|(p, d)| p.saturating_mul(d));
            Some(())
        })?;
        Some(product.filter(|_| (1..=3).contains(&dims)))
    }

    /// Walks an object whose keys have no escapes (and are valid UTF-8), handing each
    /// key to `member` with the reader at its value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.members(b'{', b'}', |r| {
            let key = r.key()?;
            r.colon()?;
            member(r, key)
        })
    }

    /// Walks `open` ... `close` (an object or array), calling `item` at each member and
    /// checking the separating commas.
    fn members(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.next()? {
                b',' => continue,
                c if c == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// The `:` after a key, with the whitespace around it.
    fn colon(&mut self) -> Option<()> {
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    /// Skips any JSON value, checking it as strictly as serde_json would.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            // Keys of ignored objects may have escapes, as in any JSON.
            b'{' => self.members(b'{', b'}', |r| {
                r.skip_string()?;
                r.colon()?;
                r.skip_value(depth + 1)
            }),
            b'[' => self.members(b'[', b']', |r| r.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.skip_number(),
        }
    }
}

/// What [`Reader::grid_blocks`] reads from a `grid` value that serde_json parsed.
pub(crate) fn grid_blocks_of(v: &serde_json::Value) -> Option<u64> {
    let dims = v.as_array()?;
    if !(1..=3).contains(&dims.len()) {
        return None;
    }
    dims.iter()
        .try_fold(1u64, |p, d| d.as_u64().map(|d| p.saturating_mul(d)))
}

enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Number {
    fn as_f64(&self) -> f64 {
        match *self {
            Number::Int(v) => v as f64,
            Number::UInt(v) => v as f64,
            Number::Float(f) => f,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_json_ignores_the_range_of_skipped_numbers() {
        // What `skip_number` may rely on: an ignored value is only checked for grammar.
        #[derive(serde::Deserialize)]
        struct Probe {
            #[allow(dead_code)]
            ph: Option<String>,
        }
        assert!(serde_json::from_slice::<Probe>(br#"{"x": 1e400, "ph": "X"}"#).is_ok());
        let mut r = super::Reader { b: b"1e400", i: 0 };
        assert_eq!(r.skip_number(), Some(()));
    }
}
