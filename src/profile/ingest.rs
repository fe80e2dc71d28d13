//! Reads a torch-profiler Chrome trace (plain or gzip) into [`TraceRecords`], one event at a
//! time.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::records::{Annotation, FxMap, GpuKind, GpuOp, Launch, PyFrame, TraceMeta, TraceRecords};
use super::scan::{EventScanner, ScanError};
use super::ProfileError;

/// Opens `path` (gzip detected by its magic bytes) and reads all records.
pub fn read_trace_file(path: &Path) -> Result<TraceRecords, ProfileError> {
    let file = File::open(path).map_err(|e| ProfileError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut head = BufReader::with_capacity(1 << 16, file);
    let gz = match head.fill_buf() {
        Ok(b) => b.starts_with(&[0x1f, 0x8b]),
        Err(e) => {
            return Err(ProfileError::Io {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let result = if gz {
        let dec = flate2::read::MultiGzDecoder::new(head);
        read_trace(BufReader::with_capacity(1 << 18, dec))
    } else {
        read_trace(BufReader::with_capacity(1 << 18, head))
    };
    result.map_err(|e| e.with_path(path, gz))
}

/// Error from [`read_trace`] before the file path is known.
#[derive(Debug)]
pub enum ReadError {
    Scan(ScanError),
    Event { offset: u64, message: String },
}

impl ReadError {
    fn with_path(self, path: &Path, gz: bool) -> ProfileError {
        let path = path.to_path_buf();
        match self {
            ReadError::Scan(ScanError::Io { offset, message }) if gz => ProfileError::Malformed {
                path,
                offset,
                message: format!("gzip stream is corrupt or truncated: {message}"),
            },
            ReadError::Scan(e) => ProfileError::Malformed {
                path,
                offset: match &e {
                    ScanError::Truncated { offset, .. }
                    | ScanError::Unexpected { offset, .. }
                    | ScanError::NoEvents { offset }
                    | ScanError::Io { offset, .. } => *offset,
                },
                message: e.to_string(),
            },
            ReadError::Event { offset, message } => ProfileError::Malformed {
                path,
                offset,
                message,
            },
        }
    }
}

/// Events handed from the scanning thread to the parsing one.
#[derive(Default)]
struct EventBatch {
    data: Vec<u8>,
    /// (byte offset in the trace, range in `data`) of each wanted event, in trace order.
    events: Vec<(u64, std::ops::Range<usize>)>,
}

/// Bytes of event text per batch (bounds the memory in flight to a few batches).
const BATCH_BYTES: usize = 1 << 20;

/// Reads all records from JSON text. Scanning (splitting the stream into events and
/// dropping the categories no table uses) runs on its own thread, parsing and collecting on
/// this one, in trace order; the first problem in byte order is the one reported.
pub fn read_trace<R: BufRead + Send>(reader: R) -> Result<TraceRecords, ReadError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<EventBatch>(4);
        let scanning = scope.spawn(move || {
            let mut scanner = EventScanner::new(reader);
            let mut batch = EventBatch::default();
            let mut events = 0u64;
            while let Some((offset, bytes)) = scanner.next_event().map_err(ReadError::Scan)? {
                events += 1;
                if !wanted_category(bytes) {
                    continue;
                }
                let start = batch.data.len();
                batch.data.extend_from_slice(bytes);
                batch.events.push((offset, start..batch.data.len()));
                if batch.data.len() >= BATCH_BYTES && tx.send(std::mem::take(&mut batch)).is_err() {
                    // The parser stopped at an invalid event; its error wins.
                    break;
                }
            }
            if !batch.events.is_empty() {
                let _ = tx.send(batch);
            }
            Ok::<_, ReadError>((events, scanner.offset(), scanner.top_level().clone()))
        });
        let mut b = Builder::default();
        let mut invalid = None;
        'batches: for batch in rx.iter() {
            for (offset, range) in &batch.events {
                let bytes = &batch.data[range.clone()];
                match serde_json::from_slice::<RawEvent<'_>>(bytes) {
                    Ok(ev) => b.add(ev),
                    Err(e) => {
                        invalid = Some(ReadError::Event {
                            offset: offset + e.column().saturating_sub(1) as u64,
                            message: format!("invalid trace event at byte {offset}: {e}"),
                        });
                        break 'batches;
                    }
                }
            }
        }
        drop(rx);
        let scanned = scanning
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(e) = invalid {
            return Err(e);
        }
        let (events, bytes, top) = scanned?;
        b.rec.events = events;
        b.rec.bytes = bytes;
        b.rec.meta = meta_from(&top);
        Ok(b.rec)
    })
}

/// Cheap pre-filter on the raw bytes: only events whose `cat` the tables use are parsed
/// (flow arrows, metadata and profiler-overhead events are about half of a trace).
fn wanted_category(bytes: &[u8]) -> bool {
    const WANTED: [&[u8]; 14] = [
        b"kernel",
        b"gpu_memset",
        b"gpu_memcpy",
        b"cuda_runtime",
        b"cuda_driver",
        b"cpu_op",
        b"python_function",
        b"user_annotation",
        b"gpu_user_annotation",
        b"Kernel",
        b"Memset",
        b"Memcpy",
        b"Runtime",
        b"Operator",
    ];
    let Some(p) = memchr::memmem::find(bytes, b"\"cat\"") else {
        return false;
    };
    let rest = &bytes[p + 5..];
    let Some(q) = memchr::memchr(b'"', rest) else {
        return true; // odd shape: let the parser decide
    };
    if !rest[..q]
        .iter()
        .all(|c| c.is_ascii_whitespace() || *c == b':')
    {
        return true;
    }
    let value = &rest[q + 1..];
    match memchr::memchr2(b'"', b'\\', value) {
        Some(e) if value[e] == b'"' => WANTED.contains(&&value[..e]) || value[..e] == *b"Driver",
        _ => true,
    }
}

fn meta_from(top: &super::scan::TopLevel) -> TraceMeta {
    #[derive(Deserialize)]
    struct Dist {
        rank: Option<u32>,
        world_size: Option<u32>,
    }
    #[derive(Deserialize)]
    struct Dev {
        name: Option<String>,
    }
    let mut meta = TraceMeta::default();
    if let Some(d) = top
        .distributed_info
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Dist>(b).ok())
    {
        meta.rank = d.rank;
        meta.world_size = d.world_size;
    }
    if let Some(devs) = top
        .device_properties
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Vec<Dev>>(b).ok())
    {
        meta.device_name = devs.into_iter().find_map(|d| d.name);
    }
    meta
}

#[derive(Default)]
struct Builder {
    rec: TraceRecords,
    threads: FxMap<(IdValue, IdValue), u32>,
}

impl Builder {
    fn thread(&mut self, pid: &Option<IdValue>, tid: &Option<IdValue>) -> u32 {
        let key = (
            pid.clone().unwrap_or_default(),
            tid.clone().unwrap_or_default(),
        );
        let next = self.threads.len() as u32;
        *self.threads.entry(key).or_insert(next)
    }

    fn add(&mut self, ev: RawEvent<'_>) {
        if ev.ph != Some("X") {
            return;
        }
        let (Some(cat), Some(ts)) = (ev.cat.as_deref(), ev.ts) else {
            return;
        };
        let ts_ns = to_ns(ts);
        let dur_ns = ev.dur.map(to_ns).unwrap_or(0).max(0);
        let args = ev.args.unwrap_or_default();
        match cat {
            "kernel" | "gpu_memset" | "gpu_memcpy" | "Kernel" | "Memset" | "Memcpy" => {
                let kind = match cat {
                    "kernel" | "Kernel" => GpuKind::Kernel,
                    "gpu_memset" | "Memset" => GpuKind::Memset,
                    _ => GpuKind::Memcpy,
                };
                let name = self.rec.names.intern(ev.name.as_deref().unwrap_or("?"));
                self.rec.gpu_ops.push(GpuOp {
                    name,
                    kind,
                    device: args.device.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                    stream: args.stream.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                    ts_ns,
                    dur_ns,
                    correlation: id_of(args.correlation),
                    external_id: id_of(args.external_id),
                });
            }
            "cuda_runtime" | "cuda_driver" | "Runtime" | "Driver" => {
                if let Some(c) = args.correlation {
                    let thread = self.thread(&ev.pid, &ev.tid);
                    self.rec.launches.push(Launch {
                        correlation: id_of(Some(c)),
                        thread,
                        ts_ns,
                        external_id: id_of(args.external_id),
                    });
                }
            }
            "cpu_op" | "Operator" => {
                if let Some(x) = args.external_id {
                    let name = self.rec.names.intern(ev.name.as_deref().unwrap_or("?"));
                    self.rec.cpu_ops.entry(id_of(Some(x))).or_insert(name);
                }
            }
            "python_function" => {
                let thread = self.thread(&ev.pid, &ev.tid);
                let name = self.rec.names.intern(ev.name.as_deref().unwrap_or("?"));
                self.rec.py_frames.push(PyFrame {
                    thread,
                    ts_ns,
                    end_ns: ts_ns + dur_ns,
                    name,
                });
            }
            "user_annotation" | "gpu_user_annotation" => {
                let thread = self.thread(&ev.pid, &ev.tid);
                let name = self.rec.names.intern(ev.name.as_deref().unwrap_or("?"));
                self.rec.annotations.push(Annotation {
                    name,
                    ts_ns,
                    end_ns: ts_ns + dur_ns,
                    on_gpu: cat == "gpu_user_annotation",
                    thread,
                });
            }
            _ => {}
        }
    }
}

fn id_of(v: Option<i64>) -> u64 {
    match v {
        Some(x) if x >= 0 => x as u64,
        _ => u64::MAX,
    }
}

/// Microseconds (float, as in Chrome traces) to integer nanoseconds.
fn to_ns(us: f64) -> i64 {
    if us.is_finite() {
        (us * 1000.0).round() as i64
    } else {
        0
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default, borrow)]
    ph: Option<&'a str>,
    #[serde(default, borrow)]
    cat: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    pid: Option<IdValue>,
    #[serde(default)]
    tid: Option<IdValue>,
    #[serde(default, deserialize_with = "num_or_str")]
    ts: Option<f64>,
    #[serde(default, deserialize_with = "num_or_str")]
    dur: Option<f64>,
    #[serde(default)]
    args: Option<RawArgs>,
}

#[derive(Deserialize, Default)]
struct RawArgs {
    #[serde(rename = "External id", default, deserialize_with = "int_or_none")]
    external_id: Option<i64>,
    #[serde(default, deserialize_with = "int_or_none")]
    correlation: Option<i64>,
    #[serde(default, deserialize_with = "int_or_none")]
    stream: Option<i64>,
    #[serde(default, deserialize_with = "int_or_none")]
    device: Option<i64>,
}

/// A `pid`/`tid`: torch writes integers, some tools strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
enum IdValue {
    #[default]
    None,
    Int(i64),
    Str(Box<str>),
}

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or string id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdValue, E> {
                Ok(IdValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdValue, E> {
                Ok(IdValue::Int(v as i64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IdValue, E> {
                Ok(IdValue::Int(v as i64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdValue, E> {
                Ok(IdValue::Str(v.into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdValue, E> {
                Ok(IdValue::None)
            }
        }
        d.deserialize_any(V)
    }
}

fn num_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn int_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(num_or_str(d)?.map(|f| f as i64))
}

/// Reads any `Read` (used by tests and property tests).
pub fn read_trace_bytes(bytes: &[u8]) -> Result<TraceRecords, ReadError> {
    read_trace(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernels_launches_and_ops() {
        let t = r#"{"traceEvents": [
          {"ph":"X","cat":"cpu_op","name":"aten::mm","pid":1,"tid":1,"ts":10.0,"dur":5,"args":{"External id":7}},
          {"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":11.5,"dur":1,"args":{"External id":7,"correlation":3}},
          {"ph":"X","cat":"kernel","name":"nvjet_x","pid":0,"tid":7,"ts":20.25,"dur":4.5,"args":{"External id":7,"correlation":3,"stream":7,"device":0}},
          {"ph":"f","id":3,"pid":1,"tid":1,"ts":11.5,"cat":"ac2g","name":"ac2g"},
          {"ph":"X","cat":"Trace","pid":"Spans","tid":"PyTorch Profiler","ts":1,"dur":2,"name":"x"}
        ], "distributedInfo": {"rank": 1, "world_size": 2}}"#;
        let r = read_trace_bytes(t.as_bytes()).unwrap();
        assert_eq!(r.gpu_ops.len(), 1);
        let k = r.gpu_ops[0];
        assert_eq!(
            (k.ts_ns, k.dur_ns, k.stream, k.correlation, k.external_id),
            (20250, 4500, 7, 3, 7)
        );
        assert_eq!(r.names.name(k.name), "nvjet_x");
        assert_eq!(r.launches.len(), 1);
        assert_eq!(r.names.name(r.cpu_ops[&7]), "aten::mm");
        assert_eq!(r.meta.rank, Some(1));
        assert_eq!(r.meta.world_size, Some(2));
        assert_eq!(r.events, 5);
    }

    #[test]
    fn prefilter_keeps_only_used_categories() {
        assert!(wanted_category(br#"{"ph":"X","cat": "kernel","name":"k"}"#));
        assert!(wanted_category(br#"{"cat":"cpu_op"}"#));
        assert!(!wanted_category(
            br#"{"ph":"f","cat":"ac2g","name":"ac2g"}"#
        ));
        assert!(!wanted_category(br#"{"name":"process_name","ph":"M"}"#));
        assert!(
            wanted_category(br#"{"cat":"ker\u006eel"}"#),
            "escapes go to the parser"
        );
    }

    #[test]
    fn bad_event_reports_offset() {
        let t = r#"{"traceEvents": [{"ph":"X","cat":"kernel","ts":"x","dur":[1]}]}"#;
        match read_trace_bytes(t.as_bytes()) {
            Err(ReadError::Event { offset, message }) => {
                assert!(offset >= 17, "{offset}");
                assert!(message.contains("byte 17"), "{message}");
            }
            other => panic!("expected event error, got {:?}", other.map(|r| r.events)),
        }
    }
}
