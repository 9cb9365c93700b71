#!/usr/bin/python3
"""epoch_torch.py: the PyTorch side of bench/epoch.sh: whole training epochs of the
quickstart's centralized model, on the exact tensors mpsl trains on, in mpsl's batch order,
including the data, the optimizer and the evaluation. Run with Debian's python3-torch
(/usr/bin/python3).

Input: the folder bench/export_epoch wrote (meta.txt and raw arrays): the training samples in
the order mpsl's centralized strategy draws them in its first epoch, and the test split.
Later epochs reuse that order (mpsl reshuffles; the work per epoch is the same).

Model (what configs/models/vit_tiny_av.yaml builds in mpsl, written as a PyTorch user would):
  image: Conv2d(1, 64, 7, stride 7) patches of 28x28 (16) + CLS + learned positions (17 tokens)
  audio: Conv2d(1, 64, 16, stride 16) patches of a 64x64 log-mel (16) + CLS + positions (17)
  early fusion: the 34 tokens concatenated -> LayerNorm (norm_pre) -> 2 pre-norm blocks
  (4 heads, MLP 256, exact GELU, LayerNorm eps 1e-6, qkv bias), no final norm
  head: mean of the two CLS outputs -> LayerNorm (fc_norm) -> Linear(64, 10)
  loss: mean softmax cross-entropy; Adam (lr from meta.txt, betas 0.9/0.999, eps 1e-8)
One epoch: for each batch (batch_size from meta.txt, the last one shorter): index the batch
out of the preloaded tensors, zero_grad (set_to_none), forward, loss, backward, Adam step.
Then the evaluation: the test split in batches of 256 under torch.no_grad(), accuracy and
mean loss (mpsl evaluates the same way, after every epoch).

Usage: epoch_torch.py DIR [--epochs N] [--threads 2] [--setup NAME] [--steps N]
  --steps N: only the first N training steps of each epoch and no evaluation (screening the
             threading setups)
Output: a short report, then "RESULT key value" lines: epoch_s (median over epochs),
epoch_s_first, train_s / eval_s (medians), test_acc (last epoch), params, wall_s (the
process, from the imports to the end), peak_rss_mb.
"""
import argparse
import os
import statistics
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_meta(folder):
    arrays, settings = {}, {}
    with open(os.path.join(folder, "meta.txt")) as f:
        for line in f:
            parts = line.split()
            if parts[0].endswith((".f32", ".i32")):
                dtype = np.float32 if parts[1] == "f32" else np.int32
                shape = tuple(int(x) for x in parts[2:])
                data = np.fromfile(os.path.join(folder, parts[0]), dtype=dtype).reshape(shape)
                arrays[parts[0].rsplit(".", 1)[0]] = torch.from_numpy(data)
            else:
                settings[parts[0]] = parts[1]
    return arrays, settings


class PatchTokens(nn.Module):
    def __init__(self, channels, patch, grid, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x):
        y = self.proj(x).flatten(2).transpose(1, 2)
        y = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), y], dim=1)
        return y + self.pos_embed


class Block(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        H = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = (q @ k.transpose(-2, -1)) * (D // H) ** -0.5
        y = (a.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Model(nn.Module):
    def __init__(self, dim=64, depth=2, heads=4, classes=10, eps=1e-6):
        super().__init__()
        self.image = PatchTokens(1, 7, 4, dim)
        self.audio = PatchTokens(1, 16, 4, dim)
        self.norm_pre = nn.LayerNorm(dim, eps=eps)
        self.blocks = nn.ModuleList(Block(dim, heads, eps) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, classes)
        for m in self.modules():   # mpsl's initialisation: weights N(0, 0.02^2), biases 0
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, image, audio):
        ti = self.image(image)
        x = torch.cat([ti, self.audio(audio)], dim=1)
        x = self.norm_pre(x)
        for b in self.blocks:
            x = b(x)
        pooled = (x[:, 0] + x[:, ti.shape[1]]) * 0.5
        return self.head(self.fc_norm(pooled))


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--setup", default="default")
    ap.add_argument("--steps", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data, settings = read_meta(a.folder)
    batch = int(settings["batch_size"])
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=float(settings["lr"]), betas=(0.9, 0.999),
                           eps=1e-8)
    params = sum(p.numel() for p in model.parameters())
    xi, xa, y = data["train_image"], data["train_audio"], data["train_labels"].long()
    ti, ta, ty = data["test_image"], data["test_audio"], data["test_labels"].long()
    n = y.shape[0]
    steps = (n + batch - 1) // batch if a.steps <= 0 else a.steps
    train_s, eval_s, epoch_s = [], [], []
    acc = float("nan")
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        for s in range(steps):
            lo, hi = s * batch, min(n, (s + 1) * batch)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xi[lo:hi], xa[lo:hi]), y[lo:hi])
            loss.backward()
            opt.step()
        t1 = time.perf_counter()
        if a.steps <= 0:
            model.eval()
            correct, loss_sum = 0, 0.0
            with torch.no_grad():
                for lo in range(0, ty.shape[0], 256):
                    logits = model(ti[lo:lo + 256], ta[lo:lo + 256])
                    loss_sum += F.cross_entropy(logits, ty[lo:lo + 256], reduction="sum").item()
                    correct += (logits.argmax(dim=1) == ty[lo:lo + 256]).sum().item()
            acc = correct / ty.shape[0]
        t2 = time.perf_counter()
        train_s.append(t1 - t0)
        eval_s.append(t2 - t1)
        epoch_s.append(t2 - t0)
        print(f"epoch {epoch}: train {t1 - t0:.3f} s, eval {t2 - t1:.3f} s, test_acc {acc:.4f}",
              file=sys.stderr)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, setup {a.setup}, "
          f"{params} parameters, {steps} steps of {batch} per epoch")
    later = epoch_s[1:] if len(epoch_s) > 1 else epoch_s
    print(f"RESULT epoch_s {statistics.median(later):.4f}")
    print(f"RESULT epoch_s_first {epoch_s[0]:.4f}")
    print(f"RESULT train_s {statistics.median(train_s[1:] or train_s):.4f}")
    print(f"RESULT eval_s {statistics.median(eval_s[1:] or eval_s):.4f}")
    print(f"RESULT test_acc {acc:.4f}")
    print(f"RESULT params {params}")
    print(f"RESULT wall_s {time.perf_counter() - T_START:.3f}")
    print(f"RESULT peak_rss_mb {peak_rss_mb():.1f}")


if __name__ == "__main__":
    main()
