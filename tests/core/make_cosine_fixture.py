#!/usr/bin/env python3
"""make_cosine_fixture.py: PyTorch's per-epoch learning rates for mpsl's cosine schedule.

    /usr/bin/python3 tests/core/make_cosine_fixture.py [--out FILE | --check FILE]

writes FILE (default: fixtures/cosine_lr.txt next to this script). --check FILE writes nothing:
it recomputes the values and compares them with FILE (exit 0 when every value agrees within
1e-12 relative and the cases are the same, 1 otherwise, 77 without PyTorch). test_optim reads
the file and checks optim_lr against every line.

What a PyTorch user writes for `schedule: {name: cosine, warmup_epochs: W, min_lr: M}` over
E epochs, stepped once per epoch, the rate of epoch e being the optimizer's lr while it runs:
  W = 0:  CosineAnnealingLR(T_max=E, eta_min=M)
  W > 0:  SequentialLR([LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1),
                        CosineAnnealingLR(T_max=E-W, eta_min=M)], milestones=[W])
i.e. base*(e+1)/W for e < W, then M + (base-M)(1 + cos(pi (e-W)/(E-W)))/2: never M within the
run, so the last epoch still trains.

Lines: "E W base min_lr epoch lr", numbers as Python's repr (exact doubles); '#' comments.
"""
import argparse
import math
import os
import sys
import warnings

CASES = [  # epochs, warmup_epochs, base lr, min_lr
    (1, 0, 0.1, 0.0),
    (2, 1, 0.1, 0.0),
    (3, 2, 0.5, 0.01),
    (5, 0, 1e-3, 0.0),
    (5, 1, 1e-3, 0.0),       # experiments/paper/pretrain_images.yaml
    (10, 2, 0.1, 1e-5),
    (15, 3, 1e-4, 1e-6),
    (15, 0, 1e-4, 0.0),
]


def torch_rates(torch, epochs, warmup, base, min_lr):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    lrs = torch.optim.lr_scheduler
    if warmup > 0:
        warm = lrs.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                            total_iters=warmup - 1)
        cosine = lrs.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=min_lr)
        sched = lrs.SequentialLR(opt, [warm, cosine], milestones=[warmup])
    else:
        sched = lrs.CosineAnnealingLR(opt, T_max=epochs, eta_min=min_lr)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return rates


def lines(torch):
    out = []
    for epochs, warmup, base, min_lr in CASES:
        for e, lr in enumerate(torch_rates(torch, epochs, warmup, base, min_lr)):
            out.append((epochs, warmup, base, min_lr, e, lr))
    return out


def read(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                e, w, base, mn, ep, lr = line.split()
                rows.append((int(e), int(w), float(base), float(mn), int(ep), float(lr)))
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(here, 'fixtures', 'cosine_lr.txt'))
    ap.add_argument('--check', metavar='FILE')
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f'SKIP: no PyTorch ({e})')
        return 77
    warnings.simplefilter('ignore')  # SequentialLR's step(0) deprecation note
    fresh = lines(torch)
    if args.check:
        committed = read(args.check)
        if [r[:5] for r in committed] != [r[:5] for r in fresh]:
            print(f'{args.check}: the cases differ from this script\'s; regenerate it')
            return 1
        bad = 0
        for c, f in zip(committed, fresh):
            if abs(c[5] - f[5]) > 1e-12 * abs(f[5]):
                print(f'{args.check}: E={c[0]} W={c[1]} base={c[2]} min_lr={c[3]} epoch {c[4]}: '
                      f'{c[5]!r} committed, PyTorch gives {f[5]!r}')
                bad += 1
        print(f'{len(fresh)} rates checked, {bad} differ')
        return 1 if bad else 0
    with open(args.out, 'w') as f:
        f.write('# PyTorch (%s) per-epoch learning rates of the cosine schedule; written by\n'
                '# tests/core/make_cosine_fixture.py (see its docstring). E W base min_lr epoch lr\n'
                % torch.__version__)
        for r in fresh:
            f.write('%d %d %r %r %d %r\n' % r)
    print(f'wrote {args.out} ({len(fresh)} rates)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
