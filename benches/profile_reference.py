"""Python reference analyzer for sota-bot's `profile analyze` benchmark.

The public Python analyzers cannot be vendored, so this is a small, faithful stand-in
written the way such tools are usually written: `json.load` of the whole trace, then dict
aggregation. It computes the same three per-stage tables as `sota-bot profile analyze`: the kernel
table (stage from GPU annotations, canonical kernel family, category, GPU time, share,
launches, top CPU op), an overlap sweep across streams (exclusive vs hidden time per
family, idle gaps) and adjacent-kernel fuse patterns; it prints their sizes as JSON with
its own wall time and peak RSS.

Usage: python3 benches/profile_reference.py TRACE(.json|.json.gz)
"""
import gzip
import json
import re
import resource
import sys
import time
from collections import defaultdict

RULES = [
    ("communication", ["nccl", "allreduce", "all_reduce", "allgather", "all_gather", "reduce_scatter"]),
    ("memory", ["memcpy", "memset"]),
    ("attention", ["flash", "fmha", "sdpa", "attention", "attn"]),
    ("moe", ["moe", "expert", "groupproblemshape", "grouped_gemm", "grouped_mm"]),
    ("gemm", ["nvjet", "gemm", "cublas", "cutlass", "wgmma", "xmma", "matmul", "splitk"]),
    ("quantize", ["quant", "fp8"]),
    ("norm", ["rmsnorm", "rms_norm", "layernorm", "layer_norm", "meanops", "rsqrt_kernel"]),
    ("rope", ["rope", "rotary"]),
    ("softmax", ["softmax"]),
    ("activation", ["silu", "gelu", "act_and_mul"]),
    ("sampling", ["topk", "top_k", "argmax", "radixsort", "radix_sort", "bitonicsort", "distribution_"]),
    ("memory", ["copy", "catarray", "gather", "scatter", "fillfunctor", "index_elementwise"]),
    ("elementwise", ["elementwise", "functor", "reduce_kernel", "vectorized", "unrolled"]),
]
OP_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
GENERIC = {"gpu_kernel_impl", "gpu_kernel_impl_nocast", "elementwise_kernel",
           "vectorized_elementwise_kernel", "unrolled_elementwise_kernel", "reduce_kernel",
           "func_wrapper_t"}


def classify(name):
    low = name.lower()
    for cat, kws in RULES:
        if any(k in low for k in kws):
            return cat
    return "other"


def canonical(name):
    if name.startswith(("Memcpy", "Memset")):
        return name
    s = name[5:] if name.startswith("void ") else name
    s = s.replace("(anonymous namespace)::", "")
    cut = min([i for i in (s.find("<"), s.find("(")) if i >= 0], default=len(s))
    base = s[:cut].strip()
    tags = []
    if cut < len(s) and s[cut] == "<":
        for ident in OP_IDENT.findall(s[cut:]):
            l = ident.lower()
            if ("functor" in l or l.endswith(("_kernel", "_kernel_cuda", "_kernel_impl"))
                    or ident.endswith("Ops") or "gemm" in l) and ident not in GENERIC \
                    and ident != base.split("::")[-1] and ident not in tags:
                tags.append(ident)
                if len(tags) == 2:
                    break
    return f"{base}<{', '.join(tags)}>" if tags else base


def stage_of(text):
    l = text.lower()
    if "decode" in l:
        return "decode"
    if "prefill" in l or "extend" in l:
        return "prefill"
    return None


FUSE_PATTERNS = [
    ("residual add + RMSNorm", ("add",), ("rmsnorm", "rms_norm", "pow_tensor_scalar")),
    ("rotary as rotate_half", ("neg_kernel",), ("catarray",)),
    ("SiLU-and-mul", ("silu",), ("mul",)),
    ("router softmax + top-k", ("softmax",), ("topk",)),
    ("MoE combine", ("gather",), ("sum_functor",)),
    ("split-K GEMM + reduce", ("splitk",), ("splitkreduce",)),
    ("allreduce + RMSNorm", ("allreduce", "all_reduce", "nccl"), ("rmsnorm", "pow_tensor_scalar")),
]


def overlap_table(ks):
    """Sweep over kernel intervals on all streams: per family, exclusive time (alone on the
    GPU) vs hidden time (another stream busy), plus idle gaps between kernels."""
    edges = []
    for i, (a, b, stream, fam) in enumerate(ks):
        edges.append((a, 1, i))
        edges.append((b, 0, i))
    edges.sort()
    active = set()
    rows = defaultdict(lambda: {"exclusive_us": 0.0, "hidden_us": 0.0})
    idle = {"gaps": 0, "idle_us": 0.0}
    prev = None
    for t, kind, i in edges:
        if prev is not None and t > prev:
            seg = t - prev
            if not active:
                idle["gaps"] += 1
                idle["idle_us"] += seg
            elif len(active) == 1:
                rows[ks[next(iter(active))][3]]["exclusive_us"] += seg
            else:
                for j in active:
                    rows[ks[j][3]]["hidden_us"] += seg
        prev = t
        if kind:
            active.add(i)
        else:
            active.discard(i)
    out = []
    for fam, r in rows.items():
        total = r["exclusive_us"] + r["hidden_us"]
        hidden = r["hidden_us"] / total if total else 0.0
        out.append({"family": fam, **r, "hidden_share": hidden,
                    "recommendation": "try overlap" if hidden < 0.2 else "skip"})
    out.sort(key=lambda r: -r["exclusive_us"])
    out.append({"family": "GPU idle", **idle})
    return out


def fuse_table(ks):
    """Known fusable sequences found as adjacent kernels on one stream."""
    per_stream = defaultdict(list)
    for a, b, stream, fam in sorted(ks):
        per_stream[stream].append((fam[0].lower(), b - a))
    hits = defaultdict(lambda: {"count": 0, "gpu_us": 0.0})
    for seq in per_stream.values():
        for (n1, d1), (n2, d2) in zip(seq, seq[1:]):
            for name, first, second in FUSE_PATTERNS:
                if any(k in n1 for k in first) and any(k in n2 for k in second):
                    hits[name]["count"] += 1
                    hits[name]["gpu_us"] += d1 + d2
    return sorted(({"pattern": n, **h} for n, h in hits.items()), key=lambda r: -r["gpu_us"])


def main(path):
    t0 = time.perf_counter()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    cpu_ops = {}
    ranges = []
    kernels = []
    for e in events:
        if e.get("ph") != "X":
            continue
        cat = e.get("cat")
        if cat in ("kernel", "gpu_memset", "gpu_memcpy"):
            kernels.append(e)
        elif cat == "cpu_op":
            x = e.get("args", {}).get("External id")
            if x is not None:
                cpu_ops.setdefault(x, e["name"])
        elif cat == "gpu_user_annotation":
            s = stage_of(e.get("name", ""))
            if s:
                ranges.append((e["ts"], e["ts"] + e.get("dur", 0), s))
    ranges.sort()
    fallback = stage_of(path) or "all"
    table = defaultdict(lambda: defaultdict(lambda: {"gpu_us": 0.0, "launches": 0, "ops": defaultdict(float)}))
    canon_cache = {}
    by_stage = defaultdict(list)
    for k in kernels:
        ts = k["ts"]
        st = next((s for a, b, s in ranges if a <= ts < b), None) if ranges else fallback
        st = st or "unannotated"
        name = k["name"]
        fam = canon_cache.get(name)
        if fam is None:
            fam = canon_cache[name] = (canonical(name), classify(name) if k["cat"] == "kernel" else "memory")
        by_stage[st].append((ts, ts + k.get("dur", 0.0), k.get("args", {}).get("stream", 0), fam))
        row = table[st][fam]
        d = k.get("dur", 0.0)
        row["gpu_us"] += d
        row["launches"] += 1
        row["ops"][cpu_ops.get(k.get("args", {}).get("External id"), "-")] += d
    out = {"stages": []}
    for st, rows in table.items():
        total = sum(r["gpu_us"] for r in rows.values())
        ks = [{"name": fam, "category": cat, "gpu_us": r["gpu_us"],
               "share": r["gpu_us"] / total if total else 0.0, "launches": r["launches"],
               "cpu_op": max(r["ops"].items(), key=lambda kv: kv[1])[0]}
              for (fam, cat), r in rows.items()]
        ks.sort(key=lambda r: -r["gpu_us"])
        out["stages"].append({"stage": st, "total_gpu_us": total, "kernels": ks})
    overlap = {st: overlap_table(ks) for st, ks in by_stage.items()}
    fuse = {st: fuse_table(ks) for st, ks in by_stage.items()}
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall_s": wall, "peak_rss_kib": peak_kib,
                      "stages": [{"stage": s["stage"], "total_gpu_us": s["total_gpu_us"],
                                  "rows": len(s["kernels"]),
                                  "overlap_rows": len(overlap[s["stage"]]),
                                  "fuse_rows": len(fuse[s["stage"]])} for s in out["stages"]]}))


if __name__ == "__main__":
    main(sys.argv[1])
