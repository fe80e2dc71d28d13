"""Captures a large real torch-profiler trace for sota-bot's `profile analyze` benchmark.

A Mixtral-style MoE decoder (8 layers, hidden 4096, 8 experts top-2, bf16, random
weights, real shapes) runs one prefill of batch 8 x 512 tokens, then STEPS decode steps,
each inside a `decode_step_<i>` annotation, under torch.profiler with CPU and CUDA
activities and `record_shapes=True`: the same capture as the 16-step fixture, long enough
to give a trace of hundreds of MB.

Usage: python3 benches/capture/large_trace.py OUT.json [STEPS]
"""
import sys
import time

import torch
from transformers import MixtralConfig, MixtralForCausalLM


def main(out: str, steps: int) -> None:
    torch.manual_seed(0)
    config = MixtralConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=8,
        num_attention_heads=32,
        num_key_value_heads=8,
        num_local_experts=8,
        num_experts_per_tok=2,
        max_position_embeddings=4096,
    )
    with torch.device("cuda"):
        model = MixtralForCausalLM(config).to(torch.bfloat16).eval()
    batch, ctx = 8, 512
    ids = torch.randint(0, config.vocab_size, (batch, ctx), device="cuda")
    with torch.no_grad():
        # Warm-up outside the profiler (kernel selection, allocator).
        out_warm = model(input_ids=ids, use_cache=True)
        del out_warm
        torch.cuda.synchronize()
        acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=acts, record_shapes=True) as prof:
            with torch.profiler.record_function("prefill_forward"):
                res = model(input_ids=ids, use_cache=True)
            past = res.past_key_values
            nxt = res.logits[:, -1:].argmax(-1)
            for i in range(steps):
                with torch.profiler.record_function(f"decode_step_{i}"):
                    res = model(input_ids=nxt, past_key_values=past, use_cache=True)
                    past = res.past_key_values
                    nxt = res.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
    t = time.time()
    prof.export_chrome_trace(out)
    print(f"exported {out} in {time.time() - t:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 160)
