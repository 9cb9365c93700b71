#!/usr/bin/env python3
"""make_fixtures.py: the PyTorch reference fixtures of the `torch` test suite (issue 3).

    /usr/bin/python3 tests/torch/make_fixtures.py [--out DIR | --check DIR]

writes DIR (default: tests/torch/fixtures next to this script) with the five safetensors files
below. --check DIR writes nothing: it regenerates them in a temporary directory and compares
them with DIR tensor by tensor, within a tolerance (exit status 0 when they agree, 1 on a
difference, 77 without PyTorch). The rule, for each file (compare_files):

  - the same set of tensor names, and for each the same dtype and shape;
  - the same "__metadata__" (strings, compared exactly);
  - values a (committed) and b (regenerated), read as float64, agree when
        |a - b| <= atol + rtol * max(|a|, |b|),   rtol = 1e-5,
        atol = 1e-6 * max(1, max |a|, max |b|)  (over the whole tensor, both files)
    or a == b exactly (infinities); a NaN agrees with nothing.

The references are computed in float64 and rounded to float32, so regenerating on another
CPU or BLAS may move a value by a float32 rounding step (6e-8 relative) or, where the exact
result is zero (the gradient of the attention's key bias, for one), leave float64 noise of
order 1e-18 instead of 0; both are far inside the tolerance. A real change of the script
is far outside it: 1e-3 of a value not far below its tensor's scale, or 1e-4 of the tensor's
scale anywhere. On a difference the check names the file and tensor, the worst element
(largest |a - b| / tolerance) with both values and its tolerance, and how many elements are
out of tolerance. tests/torch/check_detects_change.py (the test torch-fixtures-detects-change) shows that the
check fails on such a change and passes on that noise.

    layers.safetensors      kernels alone: linear (awkward sizes, with and without bias),
                            LayerNorm (eps 1e-6 and 1e-5, rows of very different scales), exact
                            GELU, the attention core between qkv and proj at T = 1, 7, 17, 50
                            for D/H = 64/4, 12/3, 48/3, softmax cross-entropy, the symmetric
                            contrastive loss, token embedding with repeated ids
    modules.safetensors     plugins alone: image_patch (1x28x28, P 7), audio_patch (1x32x40,
                            P 16, stride 10: overlapping; and 2 channels, strides 8/12, no CLS),
                            text (bytes vocabulary, pads masked; and pool_to_one over 2
                            sequences), classifier (cls over two segments; mean + fc_norm),
                            retrieval (fc_norm, E != D) with the summed contrastive loss;
                            retrieval with cosine similarity and a learnable temperature
    vit.safetensors         the small ViT of issue 3: image_patch (28x28, P 7, D 64: 16
                            patches + CLS = 17 tokens) -> vit (depth 2, heads 4, mlp_ratio 4,
                            qkv_bias, final_norm) -> classifier (cls) -> cross-entropy
    fusion.safetensors      early fusion with pre_norm: image_patch + audio_patch tokens (17 +
                            7) -> vit (D 32, pre_norm, no final norm, no qkv bias, mlp_ratio 2,
                            eps 1e-5) -> classifier (cls of both segments averaged, fc_norm)
    optim.safetensors       10 steps of Adam and of AdamW (lr 1e-3, AdamW weight_decay 0.05,
                            default betas and eps) on the small ViT's architecture at width 16
                            (to keep the files small) and a fixed batch: initial parameters,
                            the loss before the first step and after each step (11), final
                            parameters

Every tensor is float32 (integer labels, ids and bytes too: they are exact). Inputs and
parameters are drawn in float32; the reference computation runs in float64 from those float32
values and is rounded to float32 only when stored, so the references are accurate to float32
rounding. Names: "<case>.<what>" for layers; modules and models use
"<case>.param.<module>.<name>" and "<case>.grad.<module>.<name>" with <name> exactly the name the
plugin declares (timm's), <module> one of image, audio, text, encoder, head; "<case>.in.*"
inputs, "<case>.out.*" outputs, "<case>.dout" / "<case>.d*" gradients.

For a layer alone the scalar whose gradients are stored is sum(out * dout) with the stored
random upstream gradient dout; models use the mean cross-entropy of the stored labels.

Deterministic: one thread, fixed seeds, and a writer that emits the same bytes for the same
tensors (keys in insertion order, header padded with spaces to 8 bytes, as safetensors does).
Regenerating with Debian 12's python3-torch 1.13 reproduces the committed files to within the
tolerance above (the test torch-fixtures checks this; on the machine that made them, byte for
byte); another torch version may draw other random numbers.
The `safetensors` package is not needed (nor available on Debian 12): the format is written
with struct and json, as tests/weights/torch_fixture.py does.
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    if __name__ == "__main__":
        print("make_fixtures.py: PyTorch is not installed (Debian: python3-torch); skipped",
              file=sys.stderr)
        sys.exit(77)   # meson's "skipped"
    raise

torch.set_num_threads(1)
F64 = torch.float64
FILES = ("layers", "modules", "vit", "fusion", "optim")


# ------------------------------------------------------------------ safetensors writer

def save(path, tensors):
    """tensors: list of (name, float32 tensor) in file order."""
    header = {"__metadata__": {"generator": "tests/torch/make_fixtures.py"}}
    blobs = []
    at = 0
    for name, t in tensors:
        assert t.dtype == torch.float32, name
        b = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Out:
    """Tensors of one file, stored as float32 under unique names."""

    def __init__(self):
        self.items = []
        self.names = set()

    def add(self, name, t):
        assert name not in self.names, name
        self.names.add(name)
        if not torch.is_tensor(t):
            t = torch.tensor(t)
        self.items.append((name, t.detach().to(torch.float32).contiguous()))

    def size(self):
        return sum(t.numel() * 4 for _, t in self.items)


class Rand:
    """float32 draws from a seeded generator, handed out as float64 copies of those float32
    values (what the C side reads)."""

    def __init__(self, seed):
        torch.manual_seed(seed)
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, *shape, std=1.0, mean=0.0):
        return (torch.randn(*shape, generator=self.g) * std + mean).to(torch.float32).to(F64)

    def uniform(self, *shape, bound=1.0):
        u = torch.rand(*shape, generator=self.g) * 2.0 - 1.0
        return (u * bound).to(torch.float32).to(F64)

    def randint(self, hi, *shape):
        return torch.randint(0, hi, shape, generator=self.g)


# ------------------------------------------------------------------ reference math (float64)

def attention_core(qkv, H):
    """timm's Attention between qkv and proj: qkv (B,T,3D) -> (B,T,D)."""
    B, T, D3 = qkv.shape
    D = D3 // 3
    hd = D // H
    q, k, v = qkv.reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)
    att = (q @ k.transpose(-2, -1)) * hd ** -0.5
    att = att.softmax(dim=-1)
    return (att @ v).transpose(1, 2).reshape(B, T, D)


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def contrastive(img, txt):
    """(CE(S, diag) + CE(S^T, diag)) / 2, S = img @ txt^T of raw dot products."""
    S = img @ txt.t()
    lab = torch.arange(S.shape[0])
    return 0.5 * (F.cross_entropy(S, lab) + F.cross_entropy(S.t(), lab))


def patch_embed(p, x, patch, stride, cls):
    """timm's PatchEmbed (a conv) + [CLS] + pos_embed: x (B,C,H,W) -> (B,T,D). The conv
    kernel is the declared (D, C*P*P) matrix viewed as (D,C,P,P); tokens row-major."""
    w = p["patch_embed.proj.weight"]
    D = w.shape[0]
    C = x.shape[1]
    y = F.conv2d(x, w.reshape(D, C, patch, patch), p["patch_embed.proj.bias"], stride=stride)
    y = y.flatten(2).transpose(1, 2)
    if cls:
        y = torch.cat([p["cls_token"].expand(x.shape[0], -1, -1), y], dim=1)
    if "pos_embed" in p:
        y = y + p["pos_embed"]
    return y


def text_ids(row, Q):
    """The bytes vocabulary of text.c: start 1, byte + 3, end 2, pads 0; cut to Q tokens
    keeping the end. Returns (ids (Q), number of real tokens)."""
    n = 0
    while n < len(row) and row[n] != 0:
        n += 1
    k = min(n, Q - 2)
    ids = [1] + [row[i] + 3 for i in range(k)] + [2]
    return ids + [0] * (Q - len(ids)), len(ids)


def text_embed(p, data, Q, cls, pool):
    """text.c: data (B,S,L) bytes. Pads are masked (zero tokens, no gradient)."""
    table = p["token_embedding.weight"]
    B, S, _ = data.shape
    rows = []
    for b in range(B):
        toks = [p["cls_token"].reshape(1, -1)] if cls else []
        for q in range(S):
            ids, n = text_ids(data[b, q].tolist(), Q)
            e = table[torch.tensor(ids[:n])]
            if pool:
                toks.append(e.mean(dim=0, keepdim=True))
            else:
                toks.append(torch.cat([e, torch.zeros(Q - n, table.shape[1], dtype=F64)]))
        rows.append(torch.cat(toks))
    y = torch.stack(rows)
    if "pos_embed" in p:
        y = y + p["pos_embed"]
    return y


def vit_forward(p, x, depth, H, eps, pre_norm, final_norm):
    """timm's VisionTransformer blocks over tokens x (B,T,D)."""
    if pre_norm:
        x = layer_norm(x, p["norm_pre.weight"], p["norm_pre.bias"], eps)
    for i in range(depth):
        q = f"blocks.{i}."
        h = layer_norm(x, p[q + "norm1.weight"], p[q + "norm1.bias"], eps)
        qkv = F.linear(h, p[q + "attn.qkv.weight"], p.get(q + "attn.qkv.bias"))
        x = x + F.linear(attention_core(qkv, H), p[q + "attn.proj.weight"],
                         p[q + "attn.proj.bias"])
        h = layer_norm(x, p[q + "norm2.weight"], p[q + "norm2.bias"], eps)
        h = F.gelu(F.linear(h, p[q + "mlp.fc1.weight"], p[q + "mlp.fc1.bias"]))
        x = x + F.linear(h, p[q + "mlp.fc2.weight"], p[q + "mlp.fc2.bias"])
    if final_norm:
        x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps)
    return x


def classifier_forward(p, x, segments, pool, eps):
    """classifier.c: segments [(offset, length, has_cls)]; pool 'cls' or 'mean' (the CLS
    token excluded, as timm's avg pool); pooled vectors averaged; fc_norm when declared."""
    feats = []
    for off, n, has_cls in segments:
        if pool == "cls":
            feats.append(x[:, off])
        else:
            feats.append(x[:, off + has_cls:off + n].mean(dim=1))
    f = torch.stack(feats).mean(dim=0)
    if "fc_norm.weight" in p:
        f = layer_norm(f, p["fc_norm.weight"], p["fc_norm.bias"], eps)
    return F.linear(f, p["head.weight"], p["head.bias"])


# ------------------------------------------------------------------ parameters

def linear_params(r, p, name, out_f, in_f, bias=True):
    """PyTorch's default Linear initialisation: U(+-1/sqrt(in)) for weight and bias."""
    bound = in_f ** -0.5
    p[name + ".weight"] = r.uniform(out_f, in_f, bound=bound)
    if bias:
        p[name + ".bias"] = r.uniform(out_f, bound=bound)


def norm_params(r, p, name, D):
    """Not the identity (ones/zeros): gradients through w and b must matter."""
    p[name + ".weight"] = r.normal(D, std=0.2, mean=1.0)
    p[name + ".bias"] = r.normal(D, std=0.1)


def patch_params(r, D, K, T, cls, pos):
    p = {}
    linear_params(r, p, "patch_embed.proj", D, K)
    if cls:
        p["cls_token"] = r.normal(1, 1, D, std=0.5)
    if pos:
        p["pos_embed"] = r.normal(1, T, D, std=0.5)
    return p


def vit_params(r, D, depth, mlp_ratio, qkv_bias, pre_norm, final_norm):
    p = {}
    Hd = round(D * mlp_ratio)
    if pre_norm:
        norm_params(r, p, "norm_pre", D)
    for i in range(depth):
        q = f"blocks.{i}."
        norm_params(r, p, q + "norm1", D)
        linear_params(r, p, q + "attn.qkv", 3 * D, D, qkv_bias)
        linear_params(r, p, q + "attn.proj", D, D)
        norm_params(r, p, q + "norm2", D)
        linear_params(r, p, q + "mlp.fc1", Hd, D)
        linear_params(r, p, q + "mlp.fc2", D, Hd)
    if final_norm:
        norm_params(r, p, "norm", D)
    return p


def classifier_params(r, D, C, norm):
    p = {}
    if norm:
        norm_params(r, p, "fc_norm", D)
    linear_params(r, p, "head", C, D)
    return p


def leaves(p, frozen=()):
    """Copies of p's tensors as float64 leaves; those whose name starts with an entry of
    frozen need no gradient."""
    return {k: v.clone().requires_grad_(not any(k.startswith(f) for f in frozen))
            for k, v in p.items()}


def store_params(o, case, module, p, grads=True):
    for k, v in p.items():
        o.add(f"{case}.param.{module}.{k}", v)
    if grads:
        for k, v in p.items():
            if v.requires_grad:
                o.add(f"{case}.grad.{module}.{k}", v.grad)


# ------------------------------------------------------------------ layers alone

def layer_cases(o):
    r = Rand(101)

    def lin(name, N, IC, OC, bias):
        x = r.normal(N, IC).requires_grad_()
        w = r.uniform(OC, IC, bound=IC ** -0.5).requires_grad_()
        b = r.uniform(OC, bound=IC ** -0.5).requires_grad_() if bias else None
        y = F.linear(x, w, b)
        G = r.normal(N, OC)
        (y * G).sum().backward()
        o.add(f"{name}.x", x), o.add(f"{name}.w", w)
        if bias:
            o.add(f"{name}.b", b)
        o.add(f"{name}.out", y), o.add(f"{name}.dout", G)
        o.add(f"{name}.dx", x.grad), o.add(f"{name}.dw", w.grad)
        if bias:
            o.add(f"{name}.db", b.grad)

    lin("linear", 13, 37, 29, True)
    lin("linear_nobias", 1, 130, 7, False)
    lin("linear_wide", 23, 5, 193, True)

    def ln(name, N, C, eps):
        # rows at scales 1e-2 .. 30 around a non-zero mean: eps matters for the small ones
        scale = torch.logspace(-2, 1.5, N, dtype=F64).reshape(N, 1)
        x = (r.normal(N, C) * scale + r.normal(N, 1, std=2.0)).to(torch.float32).to(F64)
        x.requires_grad_()
        w = r.normal(C, std=0.3, mean=1.0).requires_grad_()
        b = r.normal(C, std=0.2).requires_grad_()
        y = layer_norm(x, w, b, eps)
        G = r.normal(N, C)
        (y * G).sum().backward()
        o.add(f"{name}.x", x), o.add(f"{name}.w", w), o.add(f"{name}.b", b)
        o.add(f"{name}.out", y), o.add(f"{name}.dout", G)
        o.add(f"{name}.dx", x.grad), o.add(f"{name}.dw", w.grad), o.add(f"{name}.db", b.grad)

    ln("layernorm_eps1e-6", 11, 67, 1e-6)
    ln("layernorm_eps1e-5", 9, 33, 1e-5)

    # exact GELU over its interesting range and the tails
    x = torch.cat([torch.linspace(-9, 9, 721, dtype=torch.float32).to(F64),
                   r.normal(300, std=3.0)]).requires_grad_()
    y = F.gelu(x)
    G = r.normal(x.shape[0])
    (y * G).sum().backward()
    o.add("gelu.x", x), o.add("gelu.out", y), o.add("gelu.dout", G), o.add("gelu.dx", x.grad)

    # the attention core at awkward sizes; B 3 at T = 1 (only the batch varies), B 2 at T = 7,
    # else B 1 (size). Scores of order a few: the softmax is far from uniform.
    for T in (1, 7, 17, 50):
        for D, H in ((64, 4), (12, 3), (48, 3)):
            B = {1: 3, 7: 2}.get(T, 1)
            name = f"attention_T{T}_D{D}_H{H}"
            qkv = r.normal(B, T, 3 * D, std=1.3).requires_grad_()
            y = attention_core(qkv, H)
            G = r.normal(B, T, D)
            (y * G).sum().backward()
            o.add(f"{name}.qkv", qkv), o.add(f"{name}.out", y), o.add(f"{name}.dout", G)
            o.add(f"{name}.dqkv", qkv.grad)

    # softmax cross-entropy (mean over the batch)
    logits = r.normal(7, 10, std=3.0).requires_grad_()
    labels = r.randint(10, 7)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    o.add("cross_entropy.logits", logits), o.add("cross_entropy.labels", labels.to(F64))
    o.add("cross_entropy.loss", loss.reshape(1)), o.add("cross_entropy.dlogits", logits.grad)

    # symmetric contrastive loss of raw dot products
    img = r.normal(6, 20, std=0.5).requires_grad_()
    txt = r.normal(6, 20, std=0.5).requires_grad_()
    loss = contrastive(img, txt)
    loss.backward()
    o.add("contrastive.img", img), o.add("contrastive.txt", txt)
    o.add("contrastive.loss", loss.reshape(1))
    o.add("contrastive.dimg", img.grad), o.add("contrastive.dtxt", txt.grad)

    # token embedding with repeated ids (every id of a small vocabulary several times)
    V, D = 11, 8
    ids = torch.cat([r.randint(V, 17), torch.tensor([3, 3, 3, 0, 10, 10, 3, 0])])
    table = r.normal(V, D).requires_grad_()
    y = table[ids]
    G = r.normal(ids.shape[0], D)
    (y * G).sum().backward()
    o.add("embedding.ids", ids.to(F64)), o.add("embedding.table", table)
    o.add("embedding.out", y), o.add("embedding.dout", G), o.add("embedding.dtable", table.grad)


# ------------------------------------------------------------------ plugins alone

def tokenizer_case(o, r, name, module, x, p, patch, stride, cls):
    p = leaves(p)
    y = patch_embed(p, x, patch, stride, cls)
    G = r.normal(*y.shape)
    (y * G).sum().backward()
    o.add(f"{name}.in", x)
    store_params(o, name, module, p, grads=False)
    o.add(f"{name}.out", y), o.add(f"{name}.dout", G)
    for k, v in p.items():
        o.add(f"{name}.grad.{module}.{k}", v.grad)


def text_case(o, r, name, data, Q, D, cls, pool):
    B, S, _ = data.shape
    T = cls + S * (1 if pool else Q)
    p = {"token_embedding.weight": r.normal(259, D)}
    if cls:
        p["cls_token"] = r.normal(1, 1, D, std=0.5)
    p["pos_embed"] = r.normal(1, T, D, std=0.5)
    p = leaves(p)
    y = text_embed(p, data, Q, cls, pool)
    G = r.normal(*y.shape)
    (y * G).sum().backward()
    o.add(f"{name}.in", data.to(F64))
    store_params(o, name, "text", p, grads=False)
    o.add(f"{name}.out", y), o.add(f"{name}.dout", G)
    for k, v in p.items():
        o.add(f"{name}.grad.text.{k}", v.grad)


def text_bytes(texts, L):
    rows = [list(t.encode("utf-8"))[:L] for t in texts]
    return torch.tensor([row + [0] * (L - len(row)) for row in rows], dtype=torch.int32)


def module_cases(o):
    r = Rand(202)
    # image_patch: 1x28x28, P 7, D 24, CLS + positions (17 tokens)
    x = r.normal(2, 1, 28, 28)
    tokenizer_case(o, r, "image_patch", "image", x, patch_params(r, 24, 49, 17, True, True),
                   7, 7, True)
    # audio_patch as AST: 1x32x40, P 16, stride 10 (overlapping): 2 x 3 patches + CLS
    x = r.normal(2, 1, 32, 40)
    tokenizer_case(o, r, "audio_patch", "audio", x, patch_params(r, 24, 256, 7, True, True),
                   16, 10, True)
    # 2 channels, stride 8 along the mel bins and 12 along the frames, no CLS: 3 x 3 patches
    x = r.normal(2, 2, 32, 40)
    tokenizer_case(o, r, "audio_patch_2ch", "audio", x,
                   patch_params(r, 8, 512, 9, False, True), 16, (8, 12), False)

    # text, bytes vocabulary: repeated bytes (repeated ids), a text cut to max_tokens, an empty
    # one, and pads (masked)
    data = text_bytes(["aaa abba", "hello world, hello!", "", "zz"], 12).reshape(4, 1, 12)
    text_case(o, r, "text", data, 10, 16, True, False)
    data = text_bytes(["one", "two two", "abcdefghijkl", "x", "", "ooo"], 12).reshape(3, 2, 12)
    text_case(o, r, "text_pool", data, 8, 12, False, True)

    # classifier over two segments with CLS: tokens 0..4 and 5..8
    B, T, D, C = 3, 9, 16, 5
    segs = [(0, 5, 1), (5, 4, 1)]
    for name, pool, norm in (("classifier_cls", "cls", False),
                             ("classifier_mean_norm", "mean", True)):
        x = r.normal(B, T, D).requires_grad_()
        p = leaves(classifier_params(r, D, C, norm))
        y = classifier_forward(p, x, segs, pool, 1e-6)
        G = r.normal(B, C)
        (y * G).sum().backward()
        o.add(f"{name}.in", x)
        store_params(o, name, "head", p, grads=False)
        o.add(f"{name}.out", y), o.add(f"{name}.dout", G), o.add(f"{name}.din", x.grad)
        for k, v in p.items():
            o.add(f"{name}.grad.head.{k}", v.grad)

    # retrieval: image tokens 0..4 (CLS first), K = 3 caption tokens 5..7; fc_norm shared,
    # E = 12 != D = 16; loss = sum over captions of the contrastive loss
    B, T, D, E, K = 5, 8, 16, 12, 3
    x = r.normal(B, T, D).requires_grad_()
    p = {}
    norm_params(r, p, "fc_norm", D)
    linear_params(r, p, "head.img", E, D)
    linear_params(r, p, "head.txt", E, D)
    p = leaves(p)

    def feat(t):
        return layer_norm(t, p["fc_norm.weight"], p["fc_norm.bias"], 1e-6)
    img = F.linear(feat(x[:, 0]), p["head.img.weight"], p["head.img.bias"])
    txts = [F.linear(feat(x[:, 5 + k]), p["head.txt.weight"], p["head.txt.bias"])
            for k in range(K)]
    y = torch.stack([img] + txts, dim=1)
    y.retain_grad()
    loss = sum(contrastive(y[:, 0], y[:, 1 + k]) for k in range(K))
    loss.backward()
    o.add("retrieval.in", x)
    store_params(o, "retrieval", "head", p, grads=False)
    o.add("retrieval.out", y), o.add("retrieval.loss", loss.reshape(1))
    o.add("retrieval.dout", y.grad), o.add("retrieval.din", x.grad)
    for k, v in p.items():
        o.add(f"retrieval.grad.head.{k}", v.grad)

    # retrieval with similarity: cosine and a learnable temperature (CLIP): the head's rows are
    # sqrt(exp(t)) * normalize(y), so the summed raw-dot contrastive loss of those rows is
    # the CLIP loss of exp(t) * cos(img, txt), checked here against the CLIP form itself;
    # t = ln(1/0.05) (not the default 0.07); no fc_norm, E = 12 != D = 16
    B, T, D, E, K = 4, 6, 16, 12, 2
    x = r.normal(B, T, D).requires_grad_()
    p = {}
    linear_params(r, p, "head.img", E, D)
    linear_params(r, p, "head.txt", E, D)
    p["head.logit_scale"] = torch.tensor([1.0 / 0.05], dtype=F64).log().to(torch.float32).to(F64)
    p = leaves(p)
    img = F.linear(x[:, 0], p["head.img.weight"], p["head.img.bias"])
    txts = [F.linear(x[:, 4 + k], p["head.txt.weight"], p["head.txt.bias"]) for k in range(K)]
    scale = p["head.logit_scale"].clamp(max=math.log(100.0)).exp()
    y = torch.stack([F.normalize(v, dim=-1) for v in [img] + txts], dim=1) * scale.sqrt()
    y.retain_grad()
    loss = sum(contrastive(y[:, 0], y[:, 1 + k]) for k in range(K))
    clip = sum(0.5 * (F.cross_entropy(L, torch.arange(B)) + F.cross_entropy(L.t(), torch.arange(B)))
               for L in (scale * F.normalize(img, dim=-1) @ F.normalize(t, dim=-1).t()
                         for t in txts))
    assert abs(loss.item() - clip.item()) < 1e-12, (loss.item(), clip.item())
    loss.backward()
    o.add("retrieval_cosine.in", x)
    store_params(o, "retrieval_cosine", "head", p, grads=False)
    o.add("retrieval_cosine.out", y), o.add("retrieval_cosine.loss", loss.reshape(1))
    o.add("retrieval_cosine.dout", y.grad), o.add("retrieval_cosine.din", x.grad)
    for k, v in p.items():
        o.add(f"retrieval_cosine.grad.head.{k}", v.grad)


# ------------------------------------------------------------------ the small ViT

VIT = dict(B=4, D=64, depth=2, heads=4, mlp_ratio=4.0, C=10, eps=1e-6, seed=303)
# the optimizer runs on the same architecture at width 16 (to keep the fixtures small: its
# initial and two final parameter sets are stored whole)
VIT_OPT = dict(VIT, D=16, seed=505)


def vit_setup(c):
    r = Rand(c["seed"])
    img = r.normal(c["B"], 1, 28, 28)
    labels = r.randint(c["C"], c["B"])
    params = {"image": patch_params(r, c["D"], 49, 17, True, True),
              "encoder": vit_params(r, c["D"], c["depth"], c["mlp_ratio"], True, False, True),
              "head": classifier_params(r, c["D"], c["C"], False)}
    return img, labels, params


def vit_loss(c, p, img, labels, keep=None):
    tokens = patch_embed(p["image"], img, 7, 7, True)
    enc = vit_forward(p["encoder"], tokens, c["depth"], c["heads"], c["eps"], False, True)
    logits = classifier_forward(p["head"], enc, [(0, 17, 1)], "cls", 1e-6)
    loss = F.cross_entropy(logits, labels)
    if keep is not None:
        for t in (tokens, enc, logits):
            t.retain_grad()
        keep.update(tokens=tokens, encoded=enc, logits=logits)
    return loss


def vit_case(o):
    img, labels, params = vit_setup(VIT)
    p = {m: leaves(v) for m, v in params.items()}
    act = {}
    loss = vit_loss(VIT, p, img, labels, act)
    loss.backward()
    o.add("vit.in.image", img), o.add("vit.in.labels", labels.to(F64))
    for m in ("image", "encoder", "head"):
        store_params(o, "vit", m, p[m])
    o.add("vit.out.tokens", act["tokens"]), o.add("vit.out.encoded", act["encoded"])
    o.add("vit.out.logits", act["logits"]), o.add("vit.out.loss", loss.reshape(1))
    o.add("vit.dlogits", act["logits"].grad), o.add("vit.dencoded", act["encoded"].grad)
    o.add("vit.dtokens", act["tokens"].grad)

    # Partially frozen (trainable_blocks: 1): block 0 gets no gradient, everything else is
    # unchanged, so the test compares the frozen model against the grads above. Checked here.
    q = {m: leaves(v, ("blocks.0.",) if m == "encoder" else ()) for m, v in params.items()}
    vit_loss(VIT, q, img, labels).backward()
    for m in q:
        for k, v in q[m].items():
            if k.startswith("blocks.0."):
                assert v.grad is None, k
            else:
                assert torch.equal(v.grad, p[m][k].grad), k


# ------------------------------------------------------------------ early fusion, pre_norm

def fusion_case(o):
    r = Rand(404)
    B, D, H, C, eps = 3, 32, 4, 7, 1e-5
    img = r.normal(B, 1, 28, 28)
    spec = r.normal(B, 1, 32, 40)
    labels = r.randint(C, B)
    params = {"image": patch_params(r, D, 49, 17, True, True),
              "audio": patch_params(r, D, 256, 7, True, True),
              "encoder": vit_params(r, D, 2, 2.0, False, True, False),
              "head": classifier_params(r, D, C, True)}
    p = {m: leaves(v) for m, v in params.items()}
    t_img = patch_embed(p["image"], img, 7, 7, True)
    t_aud = patch_embed(p["audio"], spec, 16, 10, True)
    tokens = torch.cat([t_img, t_aud], dim=1)   # layout: [0,17) image, [17,24) audio
    tokens.retain_grad()
    enc = vit_forward(p["encoder"], tokens, 2, H, eps, True, False)
    enc.retain_grad()
    logits = classifier_forward(p["head"], enc, [(0, 17, 1), (17, 7, 1)], "cls", 1e-6)
    logits.retain_grad()
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    o.add("fusion.in.image", img), o.add("fusion.in.audio", spec)
    o.add("fusion.in.labels", labels.to(F64))
    for m in ("image", "audio", "encoder", "head"):
        store_params(o, "fusion", m, p[m])
    o.add("fusion.out.tokens", tokens), o.add("fusion.out.encoded", enc)
    o.add("fusion.out.logits", logits), o.add("fusion.out.loss", loss.reshape(1))
    o.add("fusion.dlogits", logits.grad), o.add("fusion.dencoded", enc.grad)
    o.add("fusion.dtokens", tokens.grad)


# ------------------------------------------------------------------ optimizers

def optim_case(o):
    img, labels, params = vit_setup(VIT_OPT)
    o.add("optim.in.image", img), o.add("optim.in.labels", labels.to(F64))
    for m in ("image", "encoder", "head"):
        for k, v in params[m].items():
            o.add(f"optim.param.{m}.{k}", v)
    for name, make in (("adam", lambda ps: torch.optim.Adam(ps, lr=1e-3)),
                       ("adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-3,
                                                              weight_decay=0.05))):
        p = {m: leaves(v) for m, v in params.items()}
        opt = make([t for m in p.values() for t in m.values()])
        losses = []
        for step in range(11):
            opt.zero_grad()
            loss = vit_loss(VIT_OPT, p, img, labels)
            losses.append(loss.item())
            if step < 10:
                loss.backward()
                opt.step()
        o.add(f"{name}.loss", torch.tensor(losses, dtype=F64))
        for m in ("image", "encoder", "head"):
            for k, v in p[m].items():
                o.add(f"{name}.param.{m}.{k}", v)


RTOL = 1e-5
ATOL = 1e-6   # times max(1, the largest |value| of the tensor in either file)
DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def read(path):
    """(metadata, {name: (dtype, shape, float64 tensor or None)}) of a safetensors file; the
    values are None for a dtype this script does not write."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = None
        if e["dtype"] in DTYPES:
            dt, size = DTYPES[e["dtype"]]
            if (end - b) == size * _numel(e["shape"]):
                t = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + end]), dtype=dt)
                t = t.to(F64).reshape(e["shape"])
        out[name] = (e["dtype"], list(e["shape"]), t)
    return meta, out


def _numel(shape):
    k = 1
    for s in shape:
        k *= s
    return k


def tolerance(a, b):
    """The elementwise tolerance of the check for float64 tensors a (committed) and b."""
    scale = max(1.0, a.abs().max().item() if a.numel() else 0.0,
                b.abs().max().item() if b.numel() else 0.0)
    return ATOL * scale + RTOL * torch.maximum(a.abs(), b.abs())


def compare_tensors(a, b):
    """None when a and b agree within the tolerance, else a line on the worst element."""
    tol = tolerance(a, b)
    diff = (a - b).abs()
    bad = ~((diff <= tol) | (a == b))          # a NaN compares false: bad
    if not bad.any():
        return None
    ratio = torch.where(bad, diff / tol, torch.zeros_like(diff))
    ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, float("inf")), ratio)
    flat = int(ratio.reshape(-1).argmax())
    idx, rest = [], flat
    for s in reversed(a.shape):
        idx.append(rest % s)
        rest //= s
    idx = list(reversed(idx))
    av, bv = a.reshape(-1)[flat].item(), b.reshape(-1)[flat].item()
    tv = tol.reshape(-1)[flat].item()
    return (f"worst at index {idx}: committed {av:.9g}, regenerated {bv:.9g}, "
            f"|difference| {abs(av - bv):.3g} > tolerance {tv:.3g}; "
            f"{int(bad.sum())} of {a.numel()} elements out of tolerance")


def compare_files(old, new):
    """The differences of new from old (safetensors paths) beyond the check's tolerance, one
    line each; empty when they agree."""
    mo, to = read(old)
    mn, tn = read(new)
    lines = []
    if mo != mn:
        lines.append(f"__metadata__: committed {mo}, regenerated {mn}")
    for name in sorted(set(to) | set(tn)):
        if name not in to or name not in tn:
            lines.append(f"{name}: only in the {'regenerated' if name in tn else 'committed'} "
                         "file")
            continue
        (do, so, a), (dn, sn, b) = to[name], tn[name]
        if do != dn:
            lines.append(f"{name}: dtype {do} -> {dn}")
        elif so != sn:
            lines.append(f"{name}: shape {so} -> {sn}")
        elif a is None or b is None:
            lines.append(f"{name}: dtype {do} or its size not readable")
        else:
            why = compare_tensors(a, b)
            if why:
                lines.append(f"{name}: {why}")
    return lines


def check(committed):
    """Regenerates into a temporary directory and compares with the committed fixtures within
    the tolerance (compare_files); on a difference, says which tensors differ, where and by
    how much. Returns 0 or 1."""
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp, quiet=True)
        for fname in FILES:
            new = os.path.join(tmp, fname + ".safetensors")
            old = os.path.join(committed, fname + ".safetensors")
            if not os.path.exists(old):
                print(f"{old} is missing: run make_fixtures.py and commit the result")
                ok = False
                continue
            with open(new, "rb") as a, open(old, "rb") as b:
                if a.read() == b.read():
                    print(f"{old}: identical")
                    continue
            lines = compare_files(old, new)
            if not lines:
                print(f"{old}: not byte for byte identical, every tensor within tolerance")
                continue
            ok = False
            print(f"{old} differs from what make_fixtures.py makes now "
                  f"(tolerance {ATOL:g} * max(1, max |tensor|) + {RTOL:g} * max(|a|, |b|)):")
            for line in lines:
                print(f"  {old}: {line}")
    if ok:
        print(f"the fixtures in {committed} are what make_fixtures.py makes (within tolerance)")
    else:
        print("the script and the committed fixtures have drifted apart: regenerate with "
              "/usr/bin/python3 tests/torch/make_fixtures.py and commit both")
    return 0 if ok else 1


def write(out, quiet=False):
    os.makedirs(out, exist_ok=True)
    total = 0
    for fname, fill in zip(FILES, (layer_cases, module_cases, vit_case, fusion_case,
                                   optim_case)):
        o = Out()
        fill(o)
        save(os.path.join(out, fname + ".safetensors"), o.items)
        total += o.size()
        if not quiet:
            print(f"{fname}.safetensors: {len(o.items)} tensors, {o.size() / 1e6:.3f} MB")
    if not quiet:
        print(f"total {total / 1e6:.3f} MB")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "fixtures"),
                    help="directory to write (created if missing); default: fixtures/ here")
    ap.add_argument("--check", metavar="DIR",
                    help="write nothing: regenerate in a temporary directory and compare with "
                    "the fixtures in DIR within a tolerance (exit 1 on a difference)")
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
