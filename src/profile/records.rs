//! Compact records kept from a trace: only what the tables need, names interned.
//!
//! A GPU op costs ~56 bytes however long its kernel name is, so memory stays a small
//! fraction of the trace text even for traces of millions of events.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of an interned string.
pub type NameId = u32;
/// Marker for "no name".
pub const NO_NAME: NameId = u32::MAX;

/// A small fast hasher for integer and short-string keys (trace data is not adversarial
/// in a way that matters for a local analysis run).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut v = [0u8; 8];
            v[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(v));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// HashMap with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// String interner: every distinct name stored once.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: FxMap<Box<[u8]>, NameId>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> NameId {
        if let Some(&id) = self.ids.get(s.as_bytes()) {
            return id;
        }
        self.insert(s)
    }

    /// The id of the UTF-8 text `bytes`, adding it when new; `None` when a new name is not
    /// valid UTF-8. Lets the trace reader skip validating names it has seen before.
    pub fn intern_bytes(&mut self, bytes: &[u8]) -> Option<NameId> {
        if let Some(&id) = self.ids.get(bytes) {
            return Some(id);
        }
        Some(self.insert(std::str::from_utf8(bytes).ok()?))
    }

    fn insert(&mut self, s: &str) -> NameId {
        let id = self.names.len() as NameId;
        self.names.push(s.into());
        self.ids.insert(s.as_bytes().into(), id);
        id
    }

    /// The id of `s` if already interned.
    pub fn get(&self, s: &str) -> Option<NameId> {
        self.ids.get(s.as_bytes()).copied()
    }

    /// The string of `id` ("" for [`NO_NAME`] or an unknown id).
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map(|s| &**s).unwrap_or("")
    }

    /// Number of interned strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Kind of GPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuKind {
    Kernel,
    Memset,
    Memcpy,
}

/// One kernel, memset or memcpy on the GPU timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuOp {
    pub name: NameId,
    pub kind: GpuKind,
    pub device: u32,
    pub stream: u32,
    pub ts_ns: i64,
    pub dur_ns: i64,
    pub correlation: u64,
    pub external_id: u64,
    /// Thread blocks launched (product of `args.grid`), 0 when the trace does not say:
    /// grows with the tokens a pointwise kernel touches, so it tells prefill from decode.
    pub blocks: u32,
}

impl GpuOp {
    /// End timestamp in ns.
    pub fn end_ns(&self) -> i64 {
        self.ts_ns + self.dur_ns
    }
}

/// A CUDA runtime/driver call carrying a correlation id (kernel/memcpy launch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Launch {
    pub correlation: u64,
    pub thread: u32,
    pub ts_ns: i64,
    pub external_id: u64,
    /// A `cudaGraphLaunch` / `cuGraphLaunch`: every kernel with its correlation id is a
    /// node of one CUDA-graph replay.
    pub graph: bool,
}

/// A Python frame (`python_function` event) on one host thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyFrame {
    pub thread: u32,
    pub ts_ns: i64,
    pub end_ns: i64,
    pub name: NameId,
}

/// A named range (`user_annotation` on the host or `gpu_user_annotation` on the GPU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Annotation {
    pub name: NameId,
    pub ts_ns: i64,
    pub end_ns: i64,
    pub on_gpu: bool,
    pub thread: u32,
}

/// Metadata from the trace's top level.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TraceMeta {
    pub rank: Option<u32>,
    pub world_size: Option<u32>,
    pub device_name: Option<String>,
}

/// Everything kept from one trace file.
#[derive(Debug, Default, Clone)]
pub struct TraceRecords {
    pub names: Interner,
    pub gpu_ops: Vec<GpuOp>,
    pub launches: Vec<Launch>,
    /// `External id` of a host op -> its name.
    pub cpu_ops: FxMap<u64, NameId>,
    pub py_frames: Vec<PyFrame>,
    pub annotations: Vec<Annotation>,
    pub meta: TraceMeta,
    /// Number of events read.
    pub events: u64,
    /// Bytes of JSON text read.
    pub bytes: u64,
}
