#!/usr/bin/env python3
"""timm_vit_check.py: does a weights file mpsl saved (output.save_weights) load into timm's
VisionTransformer with load_state_dict(strict=True), and does that model compute mpsl's logits?

timm is not in Debian, so this file defines the part of timm's VisionTransformer that holds
parameters, with timm's module tree and therefore timm's state_dict names and shapes:
PatchEmbed with an nn.Conv2d `proj`, `cls_token`, `pos_embed`, `norm_pre`, `blocks` of pre-norm
Blocks (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, GELU, mlp.fc2), `norm`, `fc_norm`, `head`,
with timm's rules for which of norm / fc_norm is a LayerNorm and which an Identity. Modules
timm has without parameters (dropouts, layer scale off, q/k norm off) are Identity here.

    timm_vit_check.py single WEIGHTS LOGITS --tok image:C:H:W:P:S --dim D --depth N --heads H
                      --classes K --pool token|avg [--pre-norm] [--fc-norm] [--no-qkv-bias]
                      [--eps E] [--mlp-ratio R] [--expect-loss L]
        The file of a single-modality ViT (image_patch + vit + classifier) must load into
        VisionTransformer(...) strictly; its logits for LOGITS' input.image must equal LOGITS'
        logits (mpsl's, from weights_logits.c) to 1e-4 of their scale. With --expect-loss, the
        mean cross-entropy over LOGITS' labels must equal L (the run's test_loss) to 1e-4
        relative. A kernel with its rows and columns swapped must NOT match: the check can see
        a wrong pixel order.
    timm_vit_check.py fusion WEIGHTS LOGITS --tok NAME:C:H:W:P:S ... (the rest as above)
        An early-fusion file (two or more tokenizers, names prefixed "NAME."): it loads
        strictly into EarlyFusionViT, whose towers are attributes named by modality, and
        reproduces mpsl's logits; the first modality's tower, with the "NAME." prefix stripped
        and the other modalities' tensors dropped, loads strictly into VisionTransformer (the
        worked example of docs/weights.md).

S is the patch stride: P for image_patch, stride_f = stride_t for audio_patch (AST).
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import json
import struct
import sys

import torch
from torch import nn

TOL = 1e-4


# --------------------------------------------------------------------------- safetensors

def read_safetensors(path):
    """{name: float32 tensor} and the metadata of a safetensors file, with json + struct only
    (Debian 12 has no python3-safetensors). mpsl writes F32 only."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32) if end > begin \
            else torch.zeros(0)
        out[name] = t.reshape(e["shape"])
    return out, meta


# --------------------------------------------------------------------------- timm's tree

class PatchEmbed(nn.Module):
    """timm.layers.PatchEmbed: a convolution, then (B, D, gh, gw) -> (B, gh*gw, D). The stride
    is the patch for images; AST's overlapping patches use a smaller one."""

    def __init__(self, patch, stride, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=stride)
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = self.q_norm(qkv[0]), self.k_norm(qkv[1]), qkv[2]
        attn = (q * self.scale @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf), as timm's default and mpsl's
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, qkv_bias, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.ls1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def trunk(module, a):
    """What timm's VisionTransformer holds after the embedding: norm_pre, blocks, norm,
    fc_norm, head. timm: fc_norm defaults to (global_pool == 'avg'); with fc_norm, `norm` is
    an Identity."""
    norm = lambda: nn.LayerNorm(a.dim, eps=a.eps)  # noqa: E731
    use_fc_norm = a.fc_norm or a.pool == "avg"
    module.norm_pre = norm() if a.pre_norm else nn.Identity()
    module.blocks = nn.Sequential(*[Block(a.dim, a.heads, a.mlp_ratio, not a.no_qkv_bias,
                                          a.eps) for _ in range(a.depth)])
    module.norm = nn.Identity() if use_fc_norm else norm()
    module.fc_norm = norm() if use_fc_norm else nn.Identity()
    module.head = nn.Linear(a.dim, a.classes)


def pool(x, pool_kind, prefix):
    """timm's global_pool: 'token' takes the CLS token, 'avg' the mean of the others."""
    return x[:, 0] if pool_kind == "token" else x[:, prefix:].mean(dim=1)


class VisionTransformer(nn.Module):
    """timm.models.vision_transformer.VisionTransformer (class_token=True, no registers,
    pos_embed over CLS + patches, no_embed_class=False), parameters only."""

    def __init__(self, tok, a):
        super().__init__()
        _, C, H, W, P, S = tok
        self.pool_kind = a.pool
        self.patch_embed = PatchEmbed(P, S, C, a.dim)
        n = ((H - P) // S + 1) * ((W - P) // S + 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, a.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, a.dim))
        trunk(self, a)

    def embed(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed

    def forward(self, x):
        x = self.norm(self.blocks(self.norm_pre(self.embed(x))))
        return self.head(self.fc_norm(pool(x, self.pool_kind, 1)))


class Tower(nn.Module):
    """One modality's embedding in an early-fusion file: NAME.patch_embed.proj.weight,
    NAME.cls_token, NAME.pos_embed."""

    def __init__(self, tok, dim):
        super().__init__()
        _, C, H, W, P, S = tok
        self.patch_embed = PatchEmbed(P, S, C, dim)
        n = ((H - P) // S + 1) * ((W - P) // S + 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, dim))

    def forward(self, x):
        return VisionTransformer.embed(self, x)


class EarlyFusionViT(nn.Module):
    """mpsl's early fusion: each modality's tokens (CLS + patches) concatenated in tokenizer
    order, one shared trunk, the pooled vectors of the segments averaged before fc_norm and
    the head (classifier with segments: all)."""

    def __init__(self, toks, a):
        super().__init__()
        self.names = [t[0] for t in toks]
        self.pool_kind = a.pool
        for t in toks:
            setattr(self, t[0], Tower(t, a.dim))
        trunk(self, a)

    def forward(self, inputs):
        segs = [getattr(self, name)(inputs[name]) for name in self.names]
        x = self.norm(self.blocks(self.norm_pre(torch.cat(segs, dim=1))))
        pooled, at = [], 0
        for s in segs:
            pooled.append(pool(x[:, at:at + s.shape[1]], self.pool_kind, 1))
            at += s.shape[1]
        return self.head(self.fc_norm(torch.stack(pooled).mean(dim=0)))


# --------------------------------------------------------------------------- checks

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def load_strict(model, sd, what):
    try:
        model.load_state_dict(sd, strict=True)
        check(True, f"{what}: load_state_dict(strict=True) of {len(sd)} tensors")
        return True
    except RuntimeError as e:
        check(False, f"{what}: load_state_dict(strict=True): {e}")
        return False


def rel_err(ours, ref):
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def compare_logits(ref, ours, labels, a, what):
    err = rel_err(ours, ref)
    check(err <= TOL, f"{what}: logits of {ours.shape[0]} samples, max|mpsl - torch| / "
                      f"max|torch| = {err:.2e} (tolerance {TOL:g})")
    if a.expect_loss is not None:
        loss = nn.functional.cross_entropy(ref, labels.long()).item()
        d = abs(loss - a.expect_loss) / max(abs(a.expect_loss), 1e-30)
        check(d <= TOL, f"{what}: torch's mean cross-entropy {loss:.6f}, the run's test_loss "
                        f"{a.expect_loss:.6f} (relative difference {d:.2e})")


def run_single(a, sd, out):
    tok = a.tok[0]
    model = VisionTransformer(tok, a).double().eval()
    if not load_strict(model, sd, "VisionTransformer"):
        return
    x = out[f"input.{tok[0]}"].double()
    with torch.no_grad():
        ref = model(x)
        compare_logits(ref, out["logits"], out["labels"], a, "VisionTransformer")
        # The check must be able to fail: the kernel read with rows and columns swapped (the
        # other flattening order a writer could pick) gives other logits.
        w = model.patch_embed.proj.weight
        w.copy_(w.transpose(2, 3).clone())
        err = rel_err(out["logits"], model(x))
        check(err > 100 * TOL, f"a transposed patch kernel is detected (logits differ by "
                               f"{err:.2e} of their scale)")


def run_fusion(a, sd, out):
    model = EarlyFusionViT(a.tok, a).double().eval()
    if load_strict(model, sd, "EarlyFusionViT"):
        inputs = {t[0]: out[f"input.{t[0]}"].double() for t in a.tok}
        with torch.no_grad():
            compare_logits(model(inputs), out["logits"], out["labels"], a, "EarlyFusionViT")
    # docs/weights.md's worked example: the first modality's tower as a timm ViT.
    first = a.tok[0][0]
    others = tuple(t[0] + "." for t in a.tok[1:])
    tower = {k.removeprefix(first + "."): v for k, v in sd.items() if not k.startswith(others)}
    vit = VisionTransformer(a.tok[0], a).eval()
    if load_strict(vit, tower, f"the '{first}' tower as a VisionTransformer"):
        with torch.no_grad():
            y = vit(out[f"input.{first}"])
        check(tuple(y.shape) == (out["logits"].shape[0], a.classes) and
              bool(torch.isfinite(y).all()), f"the '{first}' tower computes logits {list(y.shape)}")


def parse_tok(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"--tok {text}: expected NAME:C:H:W:P:S")
    return (parts[0], *map(int, parts[1:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["single", "fusion"])
    p.add_argument("weights")
    p.add_argument("logits")
    p.add_argument("--tok", type=parse_tok, action="append", required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--pool", choices=["token", "avg"], required=True)
    p.add_argument("--mlp-ratio", type=float, default=4.0)
    p.add_argument("--eps", type=float, default=1e-6)
    p.add_argument("--pre-norm", action="store_true")
    p.add_argument("--fc-norm", action="store_true")
    p.add_argument("--no-qkv-bias", action="store_true")
    p.add_argument("--expect-loss", type=float)
    a = p.parse_args()
    sd, meta = read_safetensors(a.weights)
    out, _ = read_safetensors(a.logits)
    print(f"{a.weights}: {len(sd)} tensors, metadata {meta}")
    for name, t in sd.items():
        print(f"    {name} {list(t.shape)}")
    if a.mode == "single":
        if len(a.tok) != 1:
            p.error("single takes one --tok")
        run_single(a, sd, out)
    else:
        if len(a.tok) < 2:
            p.error("fusion takes two or more --tok")
        run_fusion(a, sd, out)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
