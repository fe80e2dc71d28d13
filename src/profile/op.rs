//! One GPU op of the joined timeline: the plain record the timeline holds and the pass
//! finder reads, kept apart from both so that neither file depends on the other's.

use super::names::Category;
use super::records::{GpuKind, NameId};

/// One GPU op with its attribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Op {
    pub family: NameId,
    pub raw: NameId,
    pub category: Category,
    pub kind: GpuKind,
    pub stream: u32,
    pub ts_ns: i64,
    pub dur_ns: i64,
    pub cpu_op: NameId,
    pub py_loc: NameId,
    /// Host timestamp of the launch call, `i64::MIN` when unknown.
    pub launch_ns: i64,
    pub launch_thread: u32,
    /// Thread blocks of the launch (0 when unknown).
    pub blocks: u32,
    /// The CUDA-graph replay that ran this op (index of its `cudaGraphLaunch` in the
    /// file), [`NOT_GRAPH`] for an op launched eagerly.
    pub graph: u32,
    pub stage: u16,
    /// Which input file the op came from (timestamps of different files are unrelated).
    pub segment: u16,
}

impl Op {
    /// End timestamp in ns.
    pub fn end_ns(&self) -> i64 {
        self.ts_ns.saturating_add(self.dur_ns)
    }
}

/// [`Op::graph`] of an eagerly launched op.
pub const NOT_GRAPH: u32 = u32::MAX;
