//! Reads a torch-profiler Chrome trace (plain or gzip) into [`TraceRecords`], one event at a
//! time.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::event::{grid_blocks_of, read_fast, Cat, EventArgs, EventFields, IdValue, NameText};
use super::records::{
    Annotation, FxMap, GpuKind, GpuOp, Launch, NameId, PyFrame, TraceMeta, TraceRecords,
};
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
    /// For every other batch, the events already read by the scanning thread (which has
    /// time to spare), one per entry of `events`; `None` where the fast reader declined.
    parsed: Option<Vec<Option<Prepared>>>,
}

/// An event read on the scanning thread: its fields, its name as a range of the batch.
struct Prepared {
    fields: EventFields<'static>,
    name: Option<std::ops::Range<usize>>,
}

impl EventBatch {
    /// Reads every event with the fast reader, keeping names as ranges of `data`.
    fn prepare(&mut self) {
        let base = self.data.as_ptr() as usize;
        let parsed = self
            .events
            .iter()
            .map(|(_, range)| {
                let ev = read_fast(&self.data[range.clone()])?;
                let name = match ev.name {
                    Some(NameText::Unchecked(b)) => {
                        let start = b.as_ptr() as usize - base;
                        Some(start..start + b.len())
                    }
                    _ => None,
                };
                Some(Prepared {
                    fields: EventFields { name: None, ..ev },
                    name,
                })
            })
            .collect();
        self.parsed = Some(parsed);
    }
}

/// Bytes of event text per batch (bounds the memory in flight to a few batches).
const BATCH_BYTES: usize = 1 << 20;

/// Reads all records from JSON text. Scanning (splitting the stream into events and
/// dropping the categories no table uses) runs on its own thread, parsing and collecting on
/// this one, in trace order; the first problem in byte order is the one reported.
pub fn read_trace<R: BufRead + Send>(reader: R) -> Result<TraceRecords, ReadError> {
    read_trace_with(reader, true)
}

/// Threads that read batches beside the scanning and collecting ones, on machines with
/// cores to spare (GPU hosts have many); none on a 2-core machine.
fn helper_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(2))
        .unwrap_or(0)
        .min(4)
}

/// [`read_trace`], with the fast event reader on or (for equivalence tests) off.
fn read_trace_with<R: BufRead + Send>(reader: R, fast: bool) -> Result<TraceRecords, ReadError> {
    read_trace_threads(reader, fast, if fast { helper_threads() } else { 0 })
}

/// [`read_trace_with`] with `helpers` extra threads reading batches.
fn read_trace_threads<R: BufRead + Send>(
    reader: R,
    fast: bool,
    helpers: usize,
) -> Result<TraceRecords, ReadError> {
    // Batches sent and not yet taken by the collecting thread.
    let queued = &AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, EventBatch)>(4);
        let scanning = scope.spawn(move || {
            let mut scanner = EventScanner::new(reader);
            let mut batch = EventBatch::default();
            let mut events = 0u64;
            let mut seq = 0u64;
            while let Some((offset, bytes)) = scanner.next_event().map_err(ReadError::Scan)? {
                events += 1;
                if !wanted_category(bytes) {
                    continue;
                }
                let start = batch.data.len();
                batch.data.extend_from_slice(bytes);
                batch.events.push((offset, start..batch.data.len()));
                if batch.data.len() >= BATCH_BYTES {
                    // Balance (without helpers): while the collecting thread still has a
                    // batch waiting, this thread reads the next one itself; when that
                    // thread waits, it gets the batch raw at once.
                    if fast && helpers == 0 && queued.load(Ordering::Acquire) > 0 {
                        batch.prepare();
                    }
                    queued.fetch_add(1, Ordering::AcqRel);
                    if tx.send((seq, std::mem::take(&mut batch))).is_err() {
                        // The parser stopped at an invalid event; its error wins.
                        break;
                    }
                    seq += 1;
                }
            }
            if !batch.events.is_empty() {
                let _ = tx.send((seq, batch));
            }
            Ok::<_, ReadError>((events, scanner.offset(), scanner.top_level().clone()))
        });
        // With helpers, batches go scanner -> helpers (read) -> this thread, which puts them
        // back in trace order.
        let rx = if helpers == 0 {
            rx
        } else {
            let shared = std::sync::Arc::new(std::sync::Mutex::new(rx));
            let (done_tx, done_rx) = std::sync::mpsc::sync_channel(2 * helpers + 2);
            for _ in 0..helpers {
                let (shared, done_tx) = (shared.clone(), done_tx.clone());
                scope.spawn(move || loop {
                    let next = shared.lock().map(|r| r.recv());
                    let Ok(Ok((seq, mut batch))) = next else {
                        break;
                    };
                    batch.prepare();
                    if done_tx.send((seq, batch)).is_err() {
                        break;
                    }
                });
            }
            done_rx
        };
        let mut b = Builder::default();
        let mut invalid = None;
        let mut waiting = std::collections::BTreeMap::new();
        let mut next_seq = 0u64;
        'batches: for (seq, batch) in rx.iter() {
            queued.fetch_sub(1, Ordering::AcqRel);
            waiting.insert(seq, batch);
            while let Some(mut batch) = waiting.remove(&next_seq) {
                next_seq += 1;
                if let Err(e) = collect_batch(&mut b, &mut batch, fast) {
                    invalid = Some(e);
                    break 'batches;
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

/// Adds one batch's events in order: prepared fields where the fast reader ran, the fast
/// reader here otherwise, serde_json for what it declines (which also names the problem).
fn collect_batch(b: &mut Builder, batch: &mut EventBatch, fast: bool) -> Result<(), ReadError> {
    let mut prepared = batch.parsed.take().map(Vec::into_iter);
    for (offset, range) in &batch.events {
        let bytes = &batch.data[range.clone()];
        let fields = match prepared.as_mut() {
            Some(p) => p.next().flatten().map(|p| EventFields {
                name: p.name.map(|r| NameText::Unchecked(&batch.data[r])),
                ..p.fields
            }),
            None if fast => read_fast(bytes),
            None => None,
        };
        if fields.is_some_and(|ev| b.add(ev).is_ok()) {
            continue;
        }
        let strict = serde_json::from_slice::<RawEvent<'_>>(bytes)
            .map_err(|e| (e.column(), e.to_string()))
            .and_then(|ev| {
                b.add(ev.into_fields())
                    .map_err(|()| (0, "an event name is not valid UTF-8".to_string()))
            });
        if let Err((column, e)) = strict {
            return Err(ReadError::Event {
                offset: offset + column.saturating_sub(1) as u64,
                message: format!("invalid trace event at byte {offset}: {e}"),
            });
        }
    }
    Ok(())
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
    static CAT: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let cat = CAT.get_or_init(|| memchr::memmem::Finder::new(b"\"cat\""));
    let Some(p) = cat.find(bytes) else {
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

    /// The interned name of `ev` ("?" when absent); `Err` when a new name is not UTF-8.
    fn name(&mut self, name: &Option<NameText<'_>>) -> Result<NameId, ()> {
        match name {
            None => Ok(self.rec.names.intern("?")),
            Some(NameText::Text(t)) => Ok(self.rec.names.intern(t)),
            Some(NameText::Unchecked(b)) => self.rec.names.intern_bytes(b).ok_or(()),
        }
    }

    /// Keeps what the tables need from one event. `Err` (nothing kept) when its name is not
    /// UTF-8, so that the strict parser can report it.
    fn add(&mut self, ev: EventFields<'_>) -> Result<(), ()> {
        if !ev.complete {
            return Ok(());
        }
        let (Some(cat), Some(ts)) = (ev.cat, ev.ts) else {
            return Ok(());
        };
        let ts_ns = to_ns(ts);
        let dur_ns = ev.dur.map(to_ns).unwrap_or(0).max(0);
        let args = ev.args.unwrap_or_default();
        match cat {
            Cat::Kernel | Cat::Memset | Cat::Memcpy => {
                let kind = match cat {
                    Cat::Kernel => GpuKind::Kernel,
                    Cat::Memset => GpuKind::Memset,
                    _ => GpuKind::Memcpy,
                };
                let name = self.name(&ev.name)?;
                self.rec.gpu_ops.push(GpuOp {
                    name,
                    kind,
                    device: args.device.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                    stream: args.stream.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                    ts_ns,
                    dur_ns,
                    correlation: id_of(args.correlation),
                    external_id: id_of(args.external_id),
                    blocks: args
                        .grid_blocks
                        .map_or(0, |b| b.min(u64::from(u32::MAX)) as u32),
                });
            }
            Cat::Runtime => {
                if let Some(c) = args.correlation {
                    let thread = self.thread(&ev.pid, &ev.tid);
                    let graph = match &ev.name {
                        Some(NameText::Text(t)) => is_graph_launch(t.as_bytes()),
                        Some(NameText::Unchecked(b)) => is_graph_launch(b),
                        None => false,
                    };
                    self.rec.launches.push(Launch {
                        correlation: id_of(Some(c)),
                        thread,
                        ts_ns,
                        external_id: id_of(args.external_id),
                        graph,
                    });
                }
            }
            Cat::CpuOp => {
                if let Some(x) = args.external_id {
                    let name = self.name(&ev.name)?;
                    self.rec.cpu_ops.entry(id_of(Some(x))).or_insert(name);
                }
            }
            Cat::Python => {
                let name = self.name(&ev.name)?;
                let thread = self.thread(&ev.pid, &ev.tid);
                self.rec.py_frames.push(PyFrame {
                    thread,
                    ts_ns,
                    end_ns: ts_ns + dur_ns,
                    name,
                });
            }
            Cat::UserAnnotation | Cat::GpuUserAnnotation => {
                let name = self.name(&ev.name)?;
                let thread = self.thread(&ev.pid, &ev.tid);
                self.rec.annotations.push(Annotation {
                    name,
                    ts_ns,
                    end_ns: ts_ns + dur_ns,
                    on_gpu: cat == Cat::GpuUserAnnotation,
                    thread,
                });
            }
            Cat::Other => {}
        }
        Ok(())
    }
}

/// `cudaGraphLaunch`, `cudaGraphLaunch_v10000`, `cuGraphLaunch`, ...
fn is_graph_launch(name: &[u8]) -> bool {
    name.windows(11).any(|w| w == b"GraphLaunch")
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
    #[serde(default, deserialize_with = "grid_blocks")]
    grid: Option<u64>,
}

impl<'a> RawEvent<'a> {
    fn into_fields(self) -> EventFields<'a> {
        let args = self.args.map(|a| EventArgs {
            external_id: a.external_id,
            correlation: a.correlation,
            stream: a.stream,
            device: a.device,
            grid_blocks: a.grid,
        });
        EventFields {
            complete: self.ph == Some("X"),
            cat: self.cat.as_deref().map(|c| Cat::of(c.as_bytes())),
            name: self.name.map(NameText::Text),
            pid: self.pid,
            tid: self.tid,
            ts: self.ts,
            dur: self.dur,
            args,
        }
    }
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

fn grid_blocks<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(grid_blocks_of(&serde_json::Value::deserialize(d)?))
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
        assert!(!r.launches[0].graph);
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

    /// Every real fixture trace reads to the same records with and without the fast reader.
    #[test]
    fn fast_reader_matches_serde_on_the_real_traces() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces");
        let mut files = vec![];
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(".json.gz") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 4, "fixture traces not found: {files:?}");
        for f in files {
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(File::open(&f).unwrap()),
                &mut text,
            )
            .unwrap();
            let fast = read_trace_threads(&text[..], true, 0).unwrap();
            let strict = read_trace_with(&text[..], false).unwrap();
            assert_same_records(&fast, &strict, &f.display().to_string());
            // Helper threads reading batches out of order change nothing either.
            let helped = read_trace_threads(&text[..], true, 3).unwrap();
            assert_same_records(&helped, &strict, &f.display().to_string());
            assert!(!fast.gpu_ops.is_empty(), "{}", f.display());
        }
    }

    fn assert_same_records(a: &TraceRecords, b: &TraceRecords, what: &str) {
        assert_eq!(a.gpu_ops, b.gpu_ops, "{what}");
        assert_eq!(a.launches, b.launches, "{what}");
        assert_eq!(a.cpu_ops, b.cpu_ops, "{what}");
        assert_eq!(a.py_frames, b.py_frames, "{what}");
        assert_eq!(a.annotations, b.annotations, "{what}");
        assert_eq!((a.events, a.bytes), (b.events, b.bytes), "{what}");
        assert_eq!(a.names.len(), b.names.len(), "{what}");
        for id in 0..a.names.len() as u32 {
            assert_eq!(a.names.name(id), b.names.name(id), "{what}");
        }
    }

    /// What the tables get from an event, whichever reader read it.
    fn normalized(ev: EventFields<'_>) -> Option<(String, EventFields<'static>)> {
        let name = match &ev.name {
            None => String::new(),
            Some(NameText::Text(t)) => t.to_string(),
            Some(NameText::Unchecked(b)) => String::from_utf8(b.to_vec()).ok()?,
        };
        Some((
            name,
            EventFields {
                name: None,
                pid: ev.pid,
                tid: ev.tid,
                args: ev.args,
                ..ev
            },
        ))
    }

    fn fragments() -> impl Strategy<Value = Vec<u8>> {
        let values: Vec<&'static [u8]> = vec![
            br#""X""#,
            br#""i""#,
            br#""kernel""#,
            br#""cpu_op""#,
            br#""Kernel""#,
            br#""ker\u006eel""#,
            br#""a\"b""#,
            br#""\q""#,
            br#""\ud800""#,
            b"\"\x01\"",
            b"\"\xff\xfe\"",
            br#""nvjet_tst_128x64""#,
            br#""1234.5""#,
            br#"" 7 ""#,
            br#""x""#,
            b"0",
            b"-0",
            b"7",
            b"-12",
            b"1.5",
            b"1e3",
            b"2.5E-2",
            b"1e400",
            b"01",
            b"1.",
            b".5",
            b"-",
            b"18446744073709551616",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"4984849807470.903",
            b"true",
            b"false",
            b"null",
            b"nul",
            b"[]",
            b"{}",
            b"[1, [2, {\"a\": [3]}]]",
            br#"{"External id": 7, "correlation": 3, "stream": 7, "device": 0}"#,
            br#"{"correlation": "12", "stream": null, "x": [1,2]}"#,
            br#"{"correlation": 1, "correlation": 2}"#,
            br#"{"stream": true}"#,
            br#"{"grid": [16, 1, 1], "block": [256, 1, 1]}"#,
            br#"{"grid": [1.5, 2]}"#,
            br#"{"grid": [-1, 2, 1]}"#,
            br#"{"grid": [1, 2, 3, 4]}"#,
            br#"{"grid": []}"#,
            br#"{"grid": "16"}"#,
            br#"{"grid": [18446744073709551615, 9223372036854775808]}"#,
            br#"{"grid": [[1], 2]}"#,
            br#"{"grid": [1, 2], "grid": [3]}"#,
            br#"[1,2,3,4]"#,
            br#"{"External\u0020id": 5}"#,
            b"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        ];
        let keys: Vec<&'static [u8]> = vec![
            b"ph",
            b"cat",
            b"name",
            b"pid",
            b"tid",
            b"ts",
            b"dur",
            b"args",
            b"id",
            b"Input Dims",
            br#"na\u006de"#,
            b"\xff",
            b"s",
        ];
        let ws: Vec<&'static [u8]> = vec![b"", b" ", b"\n  ", b"\t", b"\x0b"];
        let pair = (
            proptest::sample::select(keys),
            proptest::sample::select(values),
            proptest::sample::select(ws.clone()),
        );
        (
            proptest::collection::vec(pair, 0..9),
            proptest::sample::select(ws),
            0..20usize,
        )
            .prop_map(|(pairs, tail, mutate)| {
                let mut out = b"{".to_vec();
                for (i, (k, v, w)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(w);
                    out.push(b'"');
                    out.extend_from_slice(k);
                    out.extend_from_slice(b"\":");
                    out.extend_from_slice(w);
                    out.extend_from_slice(v);
                }
                out.extend_from_slice(tail);
                out.push(b'}');
                // Sometimes break the text: drop or duplicate one byte.
                if mutate < out.len() && mutate % 3 == 0 {
                    out.remove(mutate);
                } else if mutate < out.len() && mutate % 3 == 1 {
                    let c = out[mutate];
                    out.insert(mutate, c);
                }
                out
            })
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the fast reader accepts, serde_json accepts and reads to the same fields
        /// (or the event's name is not UTF-8, which the builder then refers to serde_json).
        #[test]
        fn fast_reader_agrees_with_serde(bytes in fragments()) {
            if let Some(fast) = read_fast(&bytes) {
                let strict = serde_json::from_slice::<RawEvent<'_>>(&bytes);
                match (normalized(fast), strict) {
                    (Some(f), Ok(s)) => {
                        let s = normalized(s.into_fields()).unwrap();
                        prop_assert_eq!(f, s, "{}", String::from_utf8_lossy(&bytes));
                    }
                    (None, _) => {}
                    (Some(_), Err(e)) => prop_assert!(
                        false,
                        "fast reader accepted what serde_json refuses ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                }
            }
        }

        /// Real events with one byte dropped, doubled or replaced never make the two
        /// readers disagree.
        #[test]
        fn fast_reader_agrees_on_damaged_real_events(at in 0usize..400, op in 0u8..3, byte in any::<u8>()) {
            let real = br#"{"ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >(int, at::native::FillFunctor<float>, std::array<char*, 1ul>)", "pid": 0, "tid": 7, "ts": 4984849808751.572, "dur": 3.871, "args": {"External id": 87045, "device": 0, "stream": 7, "correlation": 123, "registers per thread": 16, "grid": [1, 1, 1], "est. achieved occupancy %": 0}}"#;
            let mut bytes = real.to_vec();
            let at = at % bytes.len();
            match op {
                0 => { bytes.remove(at); }
                1 => bytes.insert(at, bytes[at]),
                _ => bytes[at] = byte,
            }
            if let Some(fast) = read_fast(&bytes) {
                match (normalized(fast), serde_json::from_slice::<RawEvent<'_>>(&bytes)) {
                    (Some(f), Ok(s)) => prop_assert_eq!(f, normalized(s.into_fields()).unwrap()),
                    (None, _) => {}
                    (Some(_), Err(e)) => prop_assert!(false, "accepted what serde_json refuses ({e}): {}", String::from_utf8_lossy(&bytes)),
                }
            }
        }
    }

    #[test]
    fn fast_reader_reads_the_common_shape_and_defers_the_rest() {
        let ev = read_fast(br#"{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": "s 7", "ts": 1.5, "dur": "2", "args": {"stream": 7, "grid": [1, 1]}}"#).unwrap();
        assert!(ev.complete);
        assert_eq!(ev.cat, Some(Cat::Kernel));
        assert_eq!(ev.tid, Some(IdValue::Str("s 7".into())));
        assert_eq!((ev.ts, ev.dur), (Some(1.5), Some(2.0)));
        let args = ev.args.unwrap();
        assert_eq!((args.stream, args.grid_blocks), (Some(7), Some(1)));
        let grid = |g: &str| {
            read_fast(format!(r#"{{"args": {{"grid": {g}}}}}"#).as_bytes())
                .and_then(|e| e.args)
                .map(|a| a.grid_blocks)
        };
        assert_eq!(grid("[16, 2, 3]"), Some(Some(96)));
        assert_eq!(grid("[1.5, 2]"), Some(None));
        assert_eq!(grid("[1, 2, 3, 4]"), Some(None));
        assert_eq!(grid("\"x\""), Some(None));
        // Escapes in a wanted string, duplicates and broken JSON go to serde_json.
        assert!(read_fast(br#"{"name": "a\"b"}"#).is_none());
        assert!(read_fast(br#"{"ph": "X", "ph": "X"}"#).is_none());
        assert!(read_fast(br#"{"ph": "X",}"#).is_none());
        assert!(read_fast(br#"{"x": "\q"}"#).is_none());
    }

    #[test]
    fn an_invalid_utf8_name_is_reported_with_its_offset() {
        let mut t = br#"{"traceEvents": [{"ph":"X","cat":"kernel","name":"k"#.to_vec();
        t.push(0xff);
        t.extend_from_slice(br#"","ts":1,"dur":1}]}"#);
        match read_trace_bytes(&t) {
            Err(ReadError::Event { offset, message }) => {
                assert!(offset >= 17, "{offset}");
                assert!(message.contains("byte 17"), "{message}");
            }
            other => panic!("expected event error, got {:?}", other.map(|r| r.events)),
        }
    }

    /// With helper threads, an invalid event after many batches is still the error, and
    /// every thread stops (the call returns).
    #[test]
    fn helpers_stop_at_the_first_invalid_event() {
        let good = r#"{"ph":"X","cat":"kernel","name":"k","pid":0,"tid":7,"ts":1.5,"dur":2,"args":{"stream":7}}"#;
        let mut t = String::from("{\"traceEvents\": [");
        for _ in 0..40_000 {
            t.push_str(good);
            t.push(',');
        }
        let bad_at = t.len();
        t.push_str(r#"{"ph":"X","cat":"kernel","ts":[1]}"#);
        for _ in 0..40_000 {
            t.push(',');
            t.push_str(good);
        }
        t.push_str("]}");
        match read_trace_threads(t.as_bytes(), true, 3) {
            Err(ReadError::Event { message, .. }) => {
                assert!(message.contains(&format!("byte {bad_at}")), "{message}")
            }
            other => panic!("expected event error, got {:?}", other.map(|r| r.events)),
        }
        let ok =
            read_trace_threads(t.replace(r#""ts":[1]"#, r#""ts":3"#).as_bytes(), true, 3).unwrap();
        assert_eq!(ok.gpu_ops.len(), 80_001);
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
