#!/usr/bin/env python3
"""check_detects_change.py: make_fixtures.py --check fails on a real change of the fixtures
and passes on regeneration noise (the test torch-fixtures-detects-change).

    /usr/bin/python3 tests/torch/check_detects_change.py FIXTURE_DIR

Copies FIXTURE_DIR to a temporary directory twice, edits one float32 in place in each copy
(the bytes of the safetensors file, not through make_fixtures.py) and runs
`make_fixtures.py --check` on the copies:

  - noise, must pass (exit 0): 1e-12 in an entry of the attention's key-bias gradient that is
    exactly 0 (the case a fresh machine hit: 5.2e-18 there), and one float32 rounding step
    (1 ulp) on the largest logit of the small ViT;
  - real changes, must fail (exit 1) and name both tensors: the largest logit times
    (1 + 1e-3), and 1e-4 of its tensor's scale added to the smallest entry of a linear
    layer's weight gradient.

Exit status 0 when both hold, 1 otherwise, 77 without PyTorch (make_fixtures.py's).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE = os.path.join(HERE, "make_fixtures.py")


def tensor(path, name):
    """(file bytes, offset of the tensor's data, its float32 values) of a safetensors file."""
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    (n,) = struct.unpack("<Q", raw[:8])
    e = json.loads(raw[8:8 + n].decode("utf-8"))[name]
    assert e["dtype"] == "F32", name
    b, end = e["data_offsets"]
    at = 8 + n + b
    return raw, at, list(struct.unpack(f"<{(end - b) // 4}f", raw[at:8 + n + end]))


def poke(path, name, index, value):
    """Sets element index (flat) of tensor name to value (rounded to float32); returns the new
    float32 value."""
    raw, at, _ = tensor(path, name)
    struct.pack_into("<f", raw, at + 4 * index, value)
    with open(path, "wb") as f:
        f.write(raw)
    return struct.unpack_from("<f", raw, at + 4 * index)[0]


def next_up(x):
    """The next float32 above x (x finite, > 0)."""
    (bits,) = struct.unpack("<I", struct.pack("<f", x))
    return struct.unpack("<f", struct.pack("<I", bits + 1))[0]


def run_check(d):
    r = subprocess.run([sys.executable, MAKE, "--check", d], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "fixtures")
    ok = True
    logits, kbias = "vit.out.logits", "vit.grad.encoder.blocks.0.attn.qkv.bias"
    dw = "linear.dw"
    with tempfile.TemporaryDirectory() as tmp:
        # noise: must pass
        d = os.path.join(tmp, "noise")
        shutil.copytree(src, d)
        vit = os.path.join(d, "vit.safetensors")
        _, _, v = tensor(vit, kbias)
        D = len(v) // 3
        zeros = [i for i in range(D, 2 * D) if v[i] == 0.0]
        assert zeros, "no exactly zero entry in the key-bias gradient"
        poke(vit, kbias, zeros[0], 1e-12)
        _, _, v = tensor(vit, logits)
        top = max(range(len(v)), key=lambda i: abs(v[i]))
        x = v[top]
        y = poke(vit, logits, top, next_up(x) if x > 0 else -next_up(-x))
        print(f"noise: {kbias}[{zeros[0]}] 0 -> 1e-12, {logits}[{top}] {x!r} -> {y!r} (1 ulp)")
        rc, out = run_check(d)
        print("  " + out.strip().replace("\n", "\n  "))
        if rc != 0:
            print(f"FAIL: --check exited {rc} on regeneration noise; it must pass (0)")
            ok = False
        else:
            print("  ok: --check passes (0)")

        # real changes: must fail and name both tensors
        d = os.path.join(tmp, "change")
        shutil.copytree(src, d)
        vit = os.path.join(d, "vit.safetensors")
        y = poke(vit, logits, top, x * (1 + 1e-3))
        layers = os.path.join(d, "layers.safetensors")
        _, _, w = tensor(layers, dw)
        low = min(range(len(w)), key=lambda i: abs(w[i]))
        scale = max(1.0, max(abs(t) for t in w))
        z = poke(layers, dw, low, w[low] + 1e-4 * scale)
        print(f"change: {logits}[{top}] {x!r} -> {y!r} (1e-3 relative), "
              f"{dw}[{low}] {w[low]!r} -> {z!r} (+1e-4 * {scale:.4g})")
        rc, out = run_check(d)
        print("  " + out.strip().replace("\n", "\n  "))
        if rc != 1:
            print(f"FAIL: --check exited {rc} on a real change; it must fail (1)")
            ok = False
        for name in (logits, dw):
            if f": {name}: worst at index" not in out:
                print(f"FAIL: --check did not name {name} with its worst element")
                ok = False
        if ok:
            print("  ok: --check fails (1) and names both tensors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
