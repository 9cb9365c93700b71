#!/usr/bin/env python3
"""torch_fixture.py: safetensors files made by PyTorch for the C reader, and a check of the
files the C writer makes, without the safetensors package (Debian 12 does not ship it): the
format is written and parsed directly with struct and json.

    torch_fixture.py write DIR   writes DIR/torch.safetensors (F32, F16, BF16, F64 tensors
                                 with special values), DIR/torch_expected.safetensors (the same
                                 tensors converted to F32 by torch) and DIR/timm.safetensors (a
                                 tiny timm-style ViT state dict with a "module." prefix, a conv
                                 patch kernel, and input.x / input.y: an image and the tokens
                                 timm's PatchEmbed makes of it)
    torch_fixture.py check FILE  checks the file test_torch_cross.c wrote with st_write
Exit status 0 on success, 1 on a mismatch.
"""
import json
import struct
import sys

import torch


def tensor_bytes(t):
    return bytes(t.contiguous().reshape(-1).view(torch.uint8).tolist())


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int32: "I32"}


def save(path, tensors, metadata=None):
    """tensors: list of (name, tensor). The header is padded with spaces to 8 bytes, as the
    reference implementation does."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    at = 0
    for name, t in tensors:
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32) if end > b \
            else torch.zeros(0)
        out[name] = t.reshape(e["shape"])
    return n, raw[8:8 + n], meta, out


def special_values():
    """Values every float format should carry: signs, extremes, subnormals, inf, NaN."""
    return torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-05, 5.9604645e-08,
                         3.0517578e-05, float("inf"), float("-inf"), float("nan"),
                         1.0 / 3.0, -1e-3, 1e4, 0.1, 3.14159265], dtype=torch.float64)


def write(d):
    g = torch.Generator().manual_seed(1234)
    sv = special_values()
    tensors = [
        ("f32.matrix", torch.randn(5, 7, generator=g)),
        ("f16.special", sv.to(torch.float16)),
        ("bf16.special", sv.to(torch.bfloat16)),
        ("f16.random", (torch.randn(3, 4, 5, generator=g) * 100).to(torch.float16)),
        ("bf16.random", (torch.randn(2, 33, generator=g) * 1e20).to(torch.bfloat16)),
        ("f64.random", torch.randn(4, 4, generator=g, dtype=torch.float64)),
        ("scalar", torch.tensor(2.75)),
        ("empty", torch.zeros(0, 3)),
    ]
    save(f"{d}/torch.safetensors", tensors, {"format": "pt", "source": "torch_fixture.py"})
    save(f"{d}/torch_expected.safetensors",
         [(name, t.to(torch.float32)) for name, t in tensors])

    # A timm-style ViT state dict: PatchEmbed's conv kernel (D, C, P, P), cls_token,
    # pos_embed, one MLP block, a head, saved as if wrapped in DataParallel ("module.").
    torch.manual_seed(7)
    D, C, P, H = 8, 1, 7, 28
    conv = torch.nn.Conv2d(C, D, kernel_size=P, stride=P)
    fc1 = torch.nn.Linear(D, 16)
    head = torch.nn.Linear(D, 10)
    state = {
        "patch_embed.proj.weight": conv.weight,
        "patch_embed.proj.bias": conv.bias,
        "cls_token": torch.randn(1, 1, D) * 0.02,
        "pos_embed": torch.randn(1, (H // P) ** 2 + 1, D) * 0.02,
        "blocks.0.mlp.fc1.weight": fc1.weight,
        "blocks.0.mlp.fc1.bias": fc1.bias,
        "head.weight": head.weight,
        "head.bias": head.bias,
    }
    x = torch.randn(1, C, H, H)
    with torch.no_grad():
        y = conv(x).flatten(2).transpose(1, 2)  # timm PatchEmbed: (B, N, D)
    items = [("module." + k, v.detach()) for k, v in state.items()]
    items += [("input.x", x), ("input.y", y)]
    save(f"{d}/timm.safetensors", items, {"format": "pt"})


def check(path):
    n, header, meta, t = load(path)
    ok = True

    def expect(cond, what):
        nonlocal ok
        if not cond:
            print(f"torch_fixture check {path}: {what}", file=sys.stderr)
            ok = False

    expect(n % 8 == 0, f"header size {n} is not a multiple of 8")
    expect(header.rstrip(b" ").endswith(b"}"), "header padding is not spaces")
    expect(meta == {"writer": "mpsl", "note": "cross-check"}, f"metadata {meta}")
    expect(sorted(t) == ["a.weight", "b.scalar", "c.empty"], f"names {sorted(t)}")
    a = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3
    expect(t["a.weight"].shape == (2, 3, 4) and torch.equal(t["a.weight"], a), "a.weight")
    expect(t["b.scalar"].shape == () and t["b.scalar"].item() == 1.5, "b.scalar")
    expect(t["c.empty"].shape == (0, 4), "c.empty")
    return ok


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        return 0 if check(sys.argv[2]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
