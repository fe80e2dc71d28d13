"""Captures real torch-profiler traces shaped like the ones SGLang writes, for sota-bot's
layer-pipeline tests (tests/fixtures/traces/sglang_like/).

SGLang wraps no `record_function` around forward passes, runs decode steps as CUDA-graph
replays (one graph per padded batch size; eager above the largest captured size), runs
prefill/extend eagerly, and under continuous batching interleaves prefill and decode passes
in one trace. Its profiler defaults are CPU + CUDA activities, `with_stack=True`,
`record_shapes=False`; profile-by-stage mode writes one file per stage named
`<id>-TP-<rank>-EXTEND.trace.json.gz` / `...-DECODE.trace.json.gz`.

The model is a plain-PyTorch Llama-3.1-8B-shaped decoder (hidden 4096, GQA 32/8, head 128,
MLP 14336, vocab 128256, bf16, random weights): fused QKV and gate-up projections, RMSNorm,
rotary embedding, a KV cache of fixed size (so decode is graph-capturable), SDPA attention
(causal for prefill; for decode the query heads of a KV group as the query length, with a
length mask), logits of the last token, argmax sampling outside the graph, and the next
tokens read back to the host after every step (as a scheduler does).

Captures (no annotations anywhere; pass schedule written to captures.json):
  llama8b_graphs  32 layers: one prefill of 8 x 512 tokens, then 16 decode steps of batch
                  8 as CUDA-graph replays. with_stack=True, record_shapes=False.
  llama8l_cb      8 layers, continuous-batching-like: prefill 2 x 384, 4 decode (bs 2,
                  graph), prefill 1 x 200, 4 decode (bs 3, graph of bs 4, padded), prefill
                  2 x 128, 4 decode (bs 5, above the largest graph: eager).
                  with_stack=False, record_shapes=True.
  by_stage/       8 layers, profile-by-stage: an EXTEND file with 2 prefills of 2 x 256 and
                  a DECODE file with 6 graph decode steps of bs 4. SGLang defaults.

Usage: python3 benches/capture/sglang_like.py OUT_DIR
"""
import gzip
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN, HEADS, KV_HEADS, HEAD_DIM = 4096, 32, 8, 128
INTER, VOCAB, EPS, THETA = 14336, 128256, 1e-5, 500000.0
MAX_LEN, MAX_SLOTS = 1024, 8
GROUP = HEADS // KV_HEADS
DT = torch.bfloat16
DEV = "cuda"


class Ctx:
    """Batch metadata of one forward pass (what SGLang's ForwardBatch carries)."""

    def __init__(self, decode, pos, slot0=0):
        self.decode = decode
        self.pos = pos  # prefill: [S] positions; decode: [B] position of the new token
        self.slot0 = slot0
        self.mask = None


def rope(x, cos, sin):
    half = HEAD_DIM // 2
    return torch.cat((-x[..., half:], x[..., :half]), -1) * sin + x * cos


class Attention(nn.Module):
    def __init__(self, layer_id, model):
        super().__init__()
        self.layer_id = layer_id
        self.model = [model]  # not a submodule
        self.qkv_proj = nn.Linear(HIDDEN, (HEADS + 2 * KV_HEADS) * HEAD_DIM, bias=False, device=DEV, dtype=DT)
        self.o_proj = nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False, device=DEV, dtype=DT)

    def forward(self, h, ctx):
        m = self.model[0]
        b, s, _ = h.shape
        q, k, v = self.qkv_proj(h).split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
        q = q.view(b, s, HEADS, HEAD_DIM)
        k = k.view(b, s, KV_HEADS, HEAD_DIM)
        v = v.view(b, s, KV_HEADS, HEAD_DIM)
        cos = m.cos[ctx.pos]
        sin = m.sin[ctx.pos]
        if ctx.decode:
            cos, sin = cos[:, None, None, :], sin[:, None, None, :]
        else:
            cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        kc, vc = m.k_cache[self.layer_id], m.v_cache[self.layer_id]
        if ctx.decode:
            rows = m.rows[:b]
            kc[rows, :, ctx.pos] = k[:, 0]
            vc[rows, :, ctx.pos] = v[:, 0]
            qg = q.view(b, KV_HEADS, GROUP, HEAD_DIM)
            o = F.scaled_dot_product_attention(qg, kc[:b], vc[:b], attn_mask=ctx.mask)
            o = o.reshape(b, 1, HEADS * HEAD_DIM)
        else:
            kt, vt = k.transpose(1, 2), v.transpose(1, 2)
            kc[ctx.slot0 : ctx.slot0 + b, :, :s] = kt
            vc[ctx.slot0 : ctx.slot0 + b, :, :s] = vt
            kt = kt[:, :, None].expand(b, KV_HEADS, GROUP, s, HEAD_DIM).reshape(b, HEADS, s, HEAD_DIM)
            vt = vt[:, :, None].expand(b, KV_HEADS, GROUP, s, HEAD_DIM).reshape(b, HEADS, s, HEAD_DIM)
            o = F.scaled_dot_product_attention(q.transpose(1, 2), kt, vt, is_causal=True)
            o = o.transpose(1, 2).reshape(b, s, HEADS * HEAD_DIM)
        return self.o_proj(o)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_up_proj = nn.Linear(HIDDEN, 2 * INTER, bias=False, device=DEV, dtype=DT)
        self.down_proj = nn.Linear(INTER, HIDDEN, bias=False, device=DEV, dtype=DT)

    def forward(self, h):
        g, u = self.gate_up_proj(h).chunk(2, -1)
        return self.down_proj(F.silu(g) * u)


class DecoderLayer(nn.Module):
    def __init__(self, layer_id, model):
        super().__init__()
        self.input_layernorm = nn.Parameter(torch.ones(HIDDEN, device=DEV, dtype=DT))
        self.post_attention_layernorm = nn.Parameter(torch.ones(HIDDEN, device=DEV, dtype=DT))
        self.self_attn = Attention(layer_id, model)
        self.mlp = Mlp()

    def forward(self, x, ctx):
        x = x + self.self_attn(F.rms_norm(x, (HIDDEN,), self.input_layernorm, EPS), ctx)
        return x + self.mlp(F.rms_norm(x, (HIDDEN,), self.post_attention_layernorm, EPS))


class LlamaLike(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN, device=DEV, dtype=DT)
        self.layers = nn.ModuleList([DecoderLayer(i, self) for i in range(layers)])
        self.norm = nn.Parameter(torch.ones(HIDDEN, device=DEV, dtype=DT))
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False, device=DEV, dtype=DT)
        inv = 1.0 / THETA ** (torch.arange(0, HEAD_DIM, 2, device=DEV, dtype=torch.float32) / HEAD_DIM)
        ang = torch.outer(torch.arange(MAX_LEN, device=DEV, dtype=torch.float32), inv)
        ang = torch.cat((ang, ang), -1)
        self.cos, self.sin = ang.cos().to(DT), ang.sin().to(DT)
        shape = (MAX_SLOTS, KV_HEADS, MAX_LEN, HEAD_DIM)
        self.k_cache = [torch.zeros(shape, device=DEV, dtype=DT) for _ in range(layers)]
        self.v_cache = [torch.zeros(shape, device=DEV, dtype=DT) for _ in range(layers)]
        self.rows = torch.arange(MAX_SLOTS, device=DEV)
        self.key_pos = torch.arange(MAX_LEN, device=DEV)

    def forward(self, ids, ctx):
        if ctx.decode:
            ctx.mask = (self.key_pos[None, :] <= ctx.pos[:, None])[:, None, None, :]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, ctx)
        x = F.rms_norm(x[:, -1], (HIDDEN,), self.norm, EPS)
        return self.lm_head(x)


class DecodeGraph:
    """One CUDA graph of the decode forward for a padded batch size (as SGLang captures)."""

    def __init__(self, model, bs):
        self.bs = bs
        self.ids = torch.zeros(bs, 1, dtype=torch.long, device=DEV)
        self.pos = torch.zeros(bs, dtype=torch.long, device=DEV)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(2):
                model(self.ids, Ctx(True, self.pos))
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.logits = model(self.ids, Ctx(True, self.pos))

    def run(self, ids, pos):
        n = ids.shape[0]
        self.ids[:n].copy_(ids)
        self.pos[:n].copy_(pos)
        if n < self.bs:
            self.ids[n:].zero_()
            self.pos[n:].zero_()
        self.graph.replay()
        return self.logits[:n]


class Engine:
    """A tiny scheduler loop: requests live in KV slots 0..n-1; tokens go back to the host."""

    def __init__(self, model, graph_sizes):
        self.model = model
        self.graphs = {bs: DecodeGraph(model, bs) for bs in graph_sizes}
        self.lens = []  # tokens in the cache per slot
        self.last = None  # last sampled token per slot (GPU)
        self.passes = []

    def prefill(self, b, s):
        slot0 = len(self.lens)
        ids = torch.randint(0, VOCAB, (b, s), device=DEV)
        with torch.no_grad():
            logits = self.model(ids, Ctx(False, torch.arange(s, device=DEV), slot0))
        nxt = torch.argmax(logits, -1)
        nxt.tolist()
        self.last = nxt if self.last is None else torch.cat((self.last, nxt))
        self.lens += [s] * b
        self.passes.append({"stage": "prefill", "batch": b, "tokens": b * s, "graph": False})

    def decode(self):
        n = len(self.lens)
        pos = torch.tensor(self.lens, dtype=torch.long, device=DEV)
        ids = self.last[:, None]
        fit = [bs for bs in sorted(self.graphs) if bs >= n]
        with torch.no_grad():
            if fit:
                logits = self.graphs[fit[0]].run(ids, pos)
            else:
                logits = self.model(ids, Ctx(True, pos))
        nxt = torch.argmax(logits, -1)
        nxt.tolist()
        self.last = nxt
        self.lens = [x + 1 for x in self.lens]
        rec = {"stage": "decode", "batch": n, "tokens": n, "graph": bool(fit)}
        if fit:
            rec["graph_batch"] = fit[0]
        self.passes.append(rec)


def profiler(with_stack, record_shapes):
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    return torch.profiler.profile(activities=acts, with_stack=with_stack, record_shapes=record_shapes)


def export(prof, path):
    raw = path[: -len(".gz")]
    prof.export_chrome_trace(raw)
    with open(raw, "rb") as f, gzip.open(path, "wb", compresslevel=9) as g:
        g.write(f.read())
    os.remove(raw)
    return sanity(path)


def sanity(path):
    """What the trace holds: kernels, graph launches and the kernels each one replayed."""
    with gzip.open(path, "rt") as f:
        evs = json.load(f)["traceEvents"]
    graph_corr = {}
    names = {}
    for e in evs:
        if e.get("cat") in ("cuda_runtime", "cuda_driver"):
            names[e["name"]] = names.get(e["name"], 0) + 1
            if "GraphLaunch" in e["name"]:
                graph_corr[e["args"].get("correlation")] = 0
    kernels = 0
    for e in evs:
        if e.get("cat") == "kernel":
            kernels += 1
            c = e.get("args", {}).get("correlation")
            if c in graph_corr:
                graph_corr[c] += 1
    ann = sum(1 for e in evs if e.get("cat") in ("user_annotation", "gpu_user_annotation"))
    return {
        "bytes": os.path.getsize(path),
        "events": len(evs),
        "kernels": kernels,
        "annotations": ann,
        "graph_launches": len(graph_corr),
        "kernels_per_graph_launch": sorted(set(graph_corr.values())),
        "runtime_calls": dict(sorted(names.items(), key=lambda kv: -kv[1])[:12]),
    }


def build(layers):
    torch.manual_seed(0)
    return LlamaLike(layers).eval()


def warm(engine, shapes):
    for b, s in shapes:
        engine.prefill(b, s)
    engine.decode()
    torch.cuda.synchronize()
    engine.lens, engine.last, engine.passes = [], None, []


def capture_graphs(out):
    model = build(32)
    # Graphs made before the profiler's first use can lose their kernels in traces.
    try:
        import torch.profiler._utils as putils

        putils._init_for_cuda_graphs()
    except (ImportError, AttributeError) as e:
        print("no profiler init for CUDA graphs:", e, flush=True)
    eng = Engine(model, [8])
    warm(eng, [(8, 512)])
    with profiler(with_stack=True, record_shapes=False) as prof:
        eng.prefill(8, 512)
        for _ in range(16):
            eng.decode()
        torch.cuda.synchronize()
    info = export(prof, os.path.join(out, "llama8b_graphs_prefill_b8_in512_16decode.trace.json.gz"))
    return {"layers": 32, "passes": eng.passes, "with_stack": True, "record_shapes": False, "trace": info}


def capture_cb(out, model):
    eng = Engine(model, [1, 2, 4])
    warm(eng, [(2, 384), (1, 200), (2, 128)])
    with profiler(with_stack=False, record_shapes=True) as prof:
        eng.prefill(2, 384)
        for _ in range(4):
            eng.decode()
        eng.prefill(1, 200)
        for _ in range(4):
            eng.decode()
        eng.prefill(2, 128)
        for _ in range(4):
            eng.decode()
        torch.cuda.synchronize()
    info = export(prof, os.path.join(out, "llama8l_cb_interleaved.trace.json.gz"))
    return {"layers": 8, "passes": eng.passes, "with_stack": False, "record_shapes": True, "trace": info}


def capture_by_stage(out, model):
    eng = Engine(model, [4])
    warm(eng, [(2, 256), (2, 256)])
    pid = f"{time.time()}"
    d = os.path.join(out, "by_stage")
    os.makedirs(d, exist_ok=True)
    result = {"layers": 8, "with_stack": True, "record_shapes": False, "files": {}}
    with profiler(with_stack=True, record_shapes=False) as prof:
        eng.prefill(2, 256)
        eng.prefill(2, 256)
        torch.cuda.synchronize()
    name = f"{pid}-TP-0-EXTEND.trace.json.gz"
    result["files"][name] = {"passes": eng.passes, "trace": export(prof, os.path.join(d, name))}
    eng.passes = []
    with profiler(with_stack=True, record_shapes=False) as prof:
        for _ in range(6):
            eng.decode()
        torch.cuda.synchronize()
    name = f"{pid}-TP-0-DECODE.trace.json.gz"
    result["files"][name] = {"passes": eng.passes, "trace": export(prof, os.path.join(d, name))}
    return result


def main(out):
    os.makedirs(out, exist_ok=True)
    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "python": sys.version.split()[0],
    }
    print(json.dumps(env), flush=True)
    manifest = {"env": env, "captures": {}}
    steps = [
        ("llama8b_graphs", lambda: capture_graphs(out)),
    ]
    for name, fn in steps:
        t = time.time()
        try:
            manifest["captures"][name] = fn()
        except Exception as e:  # keep the other captures
            manifest["captures"][name] = {"error": repr(e)}
        print(name, f"{time.time() - t:.1f}s", json.dumps(manifest["captures"][name])[:1500], flush=True)
        torch.cuda.empty_cache()
    small = None
    for name, fn in [("llama8l_cb", capture_cb), ("by_stage", capture_by_stage)]:
        t = time.time()
        try:
            small = small or build(8)
            manifest["captures"][name] = fn(out, small)
        except Exception as e:
            manifest["captures"][name] = {"error": repr(e)}
        print(name, f"{time.time() - t:.1f}s", json.dumps(manifest["captures"][name])[:1500], flush=True)
    with open(os.path.join(out, "captures.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
