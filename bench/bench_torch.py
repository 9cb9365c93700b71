#!/usr/bin/python3
"""bench_torch.py: the PyTorch side of bench/bench_vit.c: the same model and the same training
step, timed the same way, so that run.sh can print the ratio. Run with Debian's python3-torch
(/usr/bin/python3).

Model (timm's VisionTransformer blocks, as tests/torch/make_fixtures.py mirrors them): random
tokens x (B,T,D) ~ N(0,1) with requires_grad (the step returns d tokens, the cut-layer
gradient an MPSL server sends back) -> `depth` pre-norm blocks (LayerNorm eps 1e-6, qkv
Linear(D,3D) with bias, attention with scale head_dim^-0.5 and softmax, proj, exact GELU MLP
of width 4D) -> final LayerNorm -> CLS token -> Linear(D, C), C = 10 -> mean cross-entropy
against random labels. Initialisation as mpsl's (weights N(0, 0.02^2), biases 0, LayerNorm
1/0).

One step: optimizer.zero_grad() (set_to_none, PyTorch's default from 2.0 and its fastest),
forward, loss, loss.backward() (every parameter gradient and x.grad), AdamW step (lr 1e-3,
betas 0.9/0.999, eps 1e-8, weight decay 0.05 on every tensor; --foreach picks the
multi-tensor implementation). `warmup` untimed steps, then `steps` timed ones: median, min.

FLOPs: the same analytical GEMM count bench_vit prints (3 x the forward GEMMs); run.sh uses
the FLOPs our kernels count (the same model) for both sides' GFLOP/s.

Memory: VmHWM after the timed steps minus VmRSS just before the model is built (for reference:
PyTorch's allocator caches, and its baseline includes the library itself).

The threading setup is chosen OUTSIDE this script by run.sh, through the environment (the
OpenBLAS variant via LD_LIBRARY_PATH, OMP_WAIT_POLICY); this script reports what it got: the
OpenBLAS library actually mapped, its openblas_get_config(), its thread count, and torch's
parallel info.

Usage: bench_torch.py [--shape tiny|small] [--threads 2] [--warmup 2] [--steps N]
                      [--foreach 0|1] [--setup NAME] [--profile]
                      [--B/--T/--D/--heads/--depth/--classes n]
Output: a short report, then "RESULT key value" lines.
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "tiny": dict(B=16, T=197, D=192, heads=3, depth=12, steps=10),
    "small": dict(B=64, T=50, D=128, heads=4, depth=4, steps=20),
}


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return 1024 * int(line.split()[1])
    return -1


def mapped(part):
    with open("/proc/self/maps") as f:
        for line in f:
            i = line.find("/")
            if i >= 0 and part in line[i:]:
                return line[i:].strip()
    return "?"


def openblas_info():
    """(config string, threads) of the OpenBLAS torch loaded (the same soname resolves to the
    library already in the process)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        return lib.openblas_get_config().decode(), lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return "?", -1


class Attention(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.scale = (D // H) ** -0.5
        self.qkv = nn.Linear(D, 3 * D, bias=True)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.H, D // self.H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.attn = Attention(D, H)
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1 = nn.Linear(D, 4 * D)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, D, H, depth, C):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(D, H) for _ in range(depth)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, C)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.norm(self.blocks(x))[:, 0])


def gemm_flops(B, T, D, H, L, C):
    """3 x the forward GEMMs (forward, d input, d weight), as bench_vit.c prints."""
    N, Hd = B * T, 4 * D
    fwd = L * (2.0 * N * D * (3 * D + D + 2 * Hd) + 4.0 * B * T * T * D) + 2.0 * B * D * C
    return 3.0 * fwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--foreach", type=int, default=1)
    ap.add_argument("--setup", default="(unnamed)")
    ap.add_argument("--profile", action="store_true",
                    help="after the timed steps, profile 3 more with torch.autograd.profiler "
                    "and print the top operators by self CPU time")
    for k in ("B", "T", "D", "heads", "depth"):
        ap.add_argument("--" + k, type=int)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--bf16", action="store_true",
                    help="forward and loss under torch.autocast('cpu', dtype=torch.bfloat16), "
                    "PyTorch's CPU mixed precision (oneDNN bf16 matmuls where the CPU has them)")
    a = ap.parse_args()
    s = dict(SHAPES[a.shape])
    for k in ("B", "T", "D", "heads", "depth", "steps"):
        if getattr(a, k) is not None:
            s[k] = getattr(a, k)
    B, T, D, H, L, C = s["B"], s["T"], s["D"], s["heads"], s["depth"], a.classes

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rss0 = status_bytes("VmRSS")
    model = ViT(D, H, L, C)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.05, foreach=bool(a.foreach))
    x = torch.randn(B, T, D).requires_grad_()
    labels = torch.randint(0, C, (B,))

    def step():
        opt.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss.item()

    times = []
    losses = []
    for i in range(a.warmup + s["steps"]):
        t0 = time.perf_counter()
        losses.append(step())
        t = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(t)
    assert x.grad is not None and x.grad.shape == x.shape
    hwm = status_bytes("VmHWM")
    med, mn = statistics.median(times), min(times)
    n_params = sum(p.numel() for p in model.parameters())
    flops = gemm_flops(B, T, D, H, L, C)
    cfg, bt = openblas_info()
    blas = mapped("libopenblas")
    print(f"torch {torch.__version__} ViT step benchmark: shape {a.shape} (B {B}, T {T}, D {D}, "
          f"heads {H}, depth {L}, classes {C}), setup {a.setup}"
          f"{', bf16 autocast' if a.bf16 else ''}")
    print(f"threads: torch.get_num_threads() = {torch.get_num_threads()}, OpenBLAS threads "
          f"{bt}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"AdamW foreach={bool(a.foreach)}")
    print(f"OpenBLAS: {blas} [{cfg}]")
    print(f"parameters: {n_params}; loss {losses[0]:.4f} (first step) -> {losses[-1]:.4f} (last)")
    print(f"steps: {a.warmup} warm-up + {len(times)} timed: median {1e3 * med:.2f} ms, min "
          f"{1e3 * mn:.2f} ms")
    print(f"analytical GEMM FLOPs {flops * 1e-9:.3f} G -> {flops / med * 1e-9:.1f} GFLOP/s")
    print(f"memory: resident before the model {rss0 * 1e-6:.1f} MB, peak {hwm * 1e-6:.1f} MB, "
          f"grown {(hwm - rss0) * 1e-6:.1f} MB")
    print(f"RESULT setup {a.setup}")
    print(f"RESULT precision {'bf16' if a.bf16 else 'fp32'}")
    print(f"RESULT ms_median {1e3 * med:.3f}")
    print(f"RESULT ms_min {1e3 * mn:.3f}")
    print(f"RESULT gflop_analytical {flops * 1e-9:.6f}")
    print(f"RESULT mem_grown_mb {(hwm - rss0) * 1e-6:.3f}")
    print(f"RESULT blas {blas}")
    print(f"RESULT blas_threads {bt}")
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
