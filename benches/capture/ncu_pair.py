"""Workload for the NCU fixture pair of sota-bot's `profile ncu` digest.

Runs one residual add (PyTorch) and one Triton RMSNorm kernel on a decode-shaped
activation. `baseline` launches the RMSNorm with one warp per row (latency-bound,
low occupancy); `candidate` launches the same kernel with eight warps per row.
Both variants keep the same kernel names, so the digest can compare per kernel.
"""
import sys

import torch
import triton
import triton.language as tl


@triton.jit
def rmsnorm_kernel(x_ptr, w_ptr, out_ptr, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    var = tl.sum(x * x, axis=0) / n_cols
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    y = x * tl.rsqrt(var + eps) * w
    tl.store(out_ptr + row * n_cols + cols, y.to(tl.bfloat16), mask=mask)


def main(variant: str) -> None:
    warps = {"baseline": 1, "candidate": 8}[variant]
    rows, hidden = 4096, 4096
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
    residual = torch.randn_like(x)
    w = torch.ones(hidden, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    for _ in range(3):
        h = x + residual
        rmsnorm_kernel[(rows,)](h, w, out, hidden, 1e-6, BLOCK=hidden, num_warps=warps)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main(sys.argv[1])
