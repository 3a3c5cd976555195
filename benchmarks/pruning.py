"""Layer-adaptive pruning by DP against LAMP, global magnitude, uniform and ERK on Fashion-MNIST.

    PYTHONPATH=. .venv/bin/python benchmarks/pruning.py            # the tables in docs/pruning.md
    PYTHONPATH=. .venv/bin/python benchmarks/pruning.py --quick    # a smoke run (a few minutes)

Two models from the built-in spaces (a ResNet and a VGG, narrow enough for a shared 2-core CPU)
are trained once on a Fashion-MNIST subset (nothing is cached). For each target sparsity and
method it prints test accuracy without and with one epoch of fine-tuning (the DP as shipped,
and the paper's DP without the per-layer guard, floor and cap), then the DP's solve time and peak
memory, the additivity check (all allocations, and every layer pruned 80-100%), the DP's margin
over LAMP at high sparsity step by step (guard, floor, cap, rounds), DP against LAMP when pruned in
rounds with fine-tuning, and channel pruning at equal latency budgets: DP with the latency
predictor's costs, DP with a measured latency table, and uniform channel pruning, each measured
on this CPU (interleaved) with the achieved/target latency ratio.
"""

from __future__ import annotations

import argparse
import copy
import time
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.compress.prune import (
    METHODS,
    ChannelPruner,
    Pruner,
    additivity_report,
    channel_groups,
    distortion_curves,
    dp_allocate,
    measure_channel_latency,
    predicted_channel_latency,
)
from nas.compress.pruning.group_latency import latency_samples
from nas.compress.pruning.prunable import prunable_layers
from nas.evaluate.datasets import load_dataset
from nas.hardware import profile_path
from nas.predictors import LatencyPredictor
from search_spaces import resnet, vgg

PAPER_DP = {"max_layer_distortion": None, "min_kept_per_output": 0, "max_layer_damage": None}

NARROW = ((8,), (16,), (32,))  # one width per stage: small enough to train here in a minute
BATCH = 64  # training mini-batch


def models() -> dict[str, nn.Module]:
    """Return the two benchmark models, built from the built-in ResNet and VGG spaces."""
    rn = resnet.space(widths=NARROW, depths=(1,), kernels=(3,), stem_width=8)
    arch = {"stage0/blocks": 1, "stage1/blocks": 1, "stage2/blocks": 1}
    arch |= {f"stage{i}/{k}": v for i in range(3) for k, v in
             (("width", NARROW[i][0]), ("layout", "deep"), ("blocks[0]/kernel", 3))}  # fmt: skip
    vg = vgg.space(widths=NARROW, depths=(1, 2))
    varch = {"stage0/layers": 1, "stage1/layers": 1, "stage2/layers": 2}
    varch |= {f"stage{i}/width": NARROW[i][0] for i in range(3)}
    return {"resnet": rn.build(arch), "vgg": vg.build(varch)}


def fit(model: nn.Module, x, y, *, epochs: int, lr: float, seed: int) -> None:
    """Train ``model`` in place with SGD + momentum and a cosine schedule (the masks stay)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(y) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x, y) -> float:
    """Return the accuracy of ``model`` on (x, y) in eval mode."""
    model.eval()
    hits = sum(int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum())
               for i in range(0, len(y), 1000))  # fmt: skip
    return hits / len(y)


def unstructured(name, model, data, args) -> dict[str, np.ndarray]:
    """Print accuracy per method and sparsity, DP timing and memory, and the additivity check."""
    x_tr, y_tr, x_te, y_te = data
    calib = x_tr[: args.calib]
    ft_x, ft_y = x_tr[: args.ft], y_tr[: args.ft]

    def finetune(m: nn.Module) -> None:
        fit(m, ft_x, ft_y, epochs=1, lr=args.ft_lr, seed=args.seed)

    start = time.perf_counter()
    curves = distortion_curves(model, calib, grid_step=args.grid)
    curve_s = time.perf_counter() - start
    report = additivity_report(model, calib, curves, n_random=20, seed=args.seed)
    sizes = {n: m.weight.numel() for n, m in prunable_layers(model).items()}
    total = sum(sizes.values())
    print(f"\n## {name}: {len(sizes)} prunable layers, {total} weights, dense test accuracy "
          f"{accuracy(model, x_te, y_te):.4f}")  # fmt: skip
    print(f"curves: {len(sizes)} layers x {len(next(iter(curves.values())))} ratios on "
          f"{args.calib} samples in {curve_s:.1f} s")  # fmt: skip
    print(f"additivity over 20 random allocations: Pearson r = {report.pearson:.3f}, "
          f"Spearman rho = {report.spearman:.3f}")  # fmt: skip
    hard = additivity_report(model, calib, curves, n_random=20, seed=args.seed, min_ratio=0.8)
    print(f"additivity, 20 allocations with every layer pruned 80-100%: Pearson r = "
          f"{hard.pearson:.3f}, Spearman rho = {hard.spearman:.3f}; summed/measured distortion "
          f"median {np.median(hard.predicted / hard.measured):.2f}")  # fmt: skip
    columns = [*METHODS, "dp-paper"]
    head = " | ".join(f"{m:>13}" for m in columns)
    print(f"\nsparsity | {head} | dp - lamp  (test accuracy: no fine-tuning / 1 epoch FT)")
    for s in args.sparsities:
        cells, accs = [], {}
        for method in columns:
            extra = PAPER_DP if method == "dp-paper" else {}
            res = Pruner(s, method.split("-")[0], **extra).prune(model, calib, curves=curves)
            before = accuracy(res.model, x_te, y_te)
            finetune(res.model)
            accs[method] = (before, accuracy(res.model, x_te, y_te))
            cells.append(f"{accs[method][0]:.4f}/{accs[method][1]:.4f}")
        margin = [100 * (accs["dp"][i] - accs["lamp"][i]) for i in (0, 1)]
        cells.append(f"{margin[0]:+.2f}/{margin[1]:+.2f} pt")
        print(f"{s:8.2f} | " + " | ".join(f"{c:>13}" for c in cells), flush=True)
    print("\nDP solve (buckets=10000): sparsity, seconds, peak MiB (tracemalloc)")
    for s in args.sparsities:
        tracemalloc.start()
        start = time.perf_counter()
        dp_allocate(curves, sizes, round((1 - s) * total), buckets=10000)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"  {s:.2f}  {seconds:.3f} s  {peak:.2f} MiB")
    return curves


def _channel_costs(model, example, args):
    """Return {cost name: (latency_fn, whole-model measure)}: the predictor's and a measured table."""
    table = measure_channel_latency(model, example, repeats=args.repeats)

    def timed(m: nn.Module) -> float:
        # relative to the dense model timed in the same interleaved run, on the table's scale:
        # the load here drifts by 2x within minutes, so absolute times from another moment lie
        dense_ms, ms = (min(r) for r in latency_samples([model, m], example, args.repeats))
        return table.full_ms * ms / dense_ms

    costs = {"table": (table, timed)}
    path = profile_path("cpu", args.threads)
    if path.is_file():
        predictor = LatencyPredictor.load(path)
        shape, batch = tuple(example.shape[1:]), example.shape[0]
        start = time.perf_counter()
        fn = predicted_channel_latency(model, shape, predictor, batch)
        for g in fn.groups.values():
            fn(g.name, 1)  # every width of every group, as the DP asks
        print(f"predictor costs for {len(fn.groups)} groups, all widths: "
              f"{time.perf_counter() - start:.2f} s (profile {path.name})")  # fmt: skip
        costs = {"predictor": (fn, lambda m: predictor.predict(m, shape, batch)), **costs}
    else:
        print(f"no device profile at {path}: the predictor rows are skipped")
    return costs


def structured(name, model, data, args) -> None:
    """Print measured latency and accuracy of DP (predictor / table cost) and uniform channel pruning."""
    x_tr, y_tr, x_te, y_te = data
    calib, example = x_tr[: args.calib], x_te[: args.latency_batch]
    costs = _channel_costs(model, example, args)
    print(f"\n## {name}, channel pruning at batch {args.latency_batch} ({args.threads} thread(s)): "
          f"{len(channel_groups(model))} channel groups; measured = fastest of {args.repeats}, all "
          "variants and the dense model interleaved in one run")  # fmt: skip
    print("budget | cost      | method  | predicted ms | measured ms | x dense | achieved/target | "
          "params | acc / +1 ep FT | channels kept")  # fmt: skip
    for frac in args.budgets:
        results = {}
        for cost, (fn, measure) in costs.items():
            for method in ("dp", "uniform"):
                pruner = ChannelPruner(frac * fn.full_ms, method, base_ms=fn.base_ms,
                                       calibrate_rounds=8 if cost == "predictor" else 4)  # fmt: skip
                results[(cost, method)] = pruner.prune(model, calib, fn, measure=measure)
        runs = latency_samples([model] + [r.model for r in results.values()], example, args.repeats)
        dense_ms, *ms = [float(np.min(r)) for r in runs]
        for ((cost, method), res), measured in zip(results.items(), ms, strict=True):
            before = accuracy(res.model, x_te, y_te)
            fit(res.model, x_tr[: args.ft], y_tr[: args.ft], epochs=1, lr=args.ft_lr,
                seed=args.seed)  # fmt: skip
            after = accuracy(res.model, x_te, y_te)
            params = sum(p.numel() for p in res.model.parameters())
            ratio = measured / dense_ms
            print(f"{frac:6.2f} | {cost:9} | {method:7} | {res.measured_latency_ms:12.2f} | "
                  f"{measured:11.2f} | {ratio:7.2f} | {ratio / frac:15.2f} | {params:6d} | "
                  f"{before:.4f} / {after:.4f} | {list(res.channels.values())}",
                  flush=True)  # fmt: skip


def high_sparsity(name, model, data, args, curves) -> None:
    """Print DP's margin over LAMP at high sparsity, one change at a time (1 epoch FT at the end)."""
    x_tr, y_tr, x_te, y_te = data
    calib = x_tr[: args.calib]
    variants = {
        "lamp": {"method": "lamp"},
        "dp, paper (no guard/floor/cap)": PAPER_DP,
        "dp + dead-model guard": {"min_kept_per_output": 0, "max_layer_damage": None},
        "dp + guard + floor": {"max_layer_damage": None},
        "dp + guard + floor + cap (default)": {},
        f"dp default, {args.rounds} rounds, re-curved": {"rounds": args.rounds},
    }
    print("\nhigh sparsity, one change at a time: test accuracy (no FT / 1 epoch FT), dp - lamp in points")
    for s in args.iter_sparsities:
        accs = {}
        for label, kw in variants.items():
            pruner = Pruner(s, **{"method": "dp", "grid_step": args.grid, **kw})
            res = pruner.prune(model, calib, curves=curves)
            before = accuracy(res.model, x_te, y_te)
            fit(res.model, x_tr[: args.ft], y_tr[: args.ft], epochs=1, lr=args.ft_lr, seed=args.seed)
            accs[label] = (before, accuracy(res.model, x_te, y_te))
            emptied = sum(r >= 1.0 for r in res.allocation.values())
            margin = "" if label == "lamp" else "  dp - lamp {:+.2f} / {:+.2f}".format(
                *(100 * (accs[label][i] - accs["lamp"][i]) for i in (0, 1)))
            print(f"  {s:.2f} | {label:36} | {accs[label][0]:.4f} / {accs[label][1]:.4f} | "
                  f"max layer ratio {max(res.allocation.values()):.3f}, {emptied} emptied{margin}",
                  flush=True)  # fmt: skip


def iterative(name, model, data, args, curves) -> None:
    """Print DP against LAMP at high sparsity when pruned in rounds, fine-tuning after each."""
    x_tr, y_tr, x_te, y_te = data
    calib = x_tr[: args.calib]

    def finetune(m: nn.Module) -> None:
        fit(m, x_tr[: args.ft], y_tr[: args.ft], epochs=1, lr=args.ft_lr, seed=args.seed)

    print(f"\niterative, {args.rounds} rounds (1 fine-tuning epoch after each): sparsity | dp | lamp")
    for s in args.iter_sparsities:
        pruners = [Pruner(s, m, grid_step=args.grid, rounds=args.rounds) for m in ("dp", "lamp")]
        accs = [accuracy(p.prune(model, calib, finetune=finetune, curves=curves).model, x_te, y_te)
                for p in pruners]  # fmt: skip
        print(f"  {s:.2f} | {accs[0]:.4f} | {accs[1]:.4f} | dp - lamp {100 * (accs[0] - accs[1]):+.2f} pt",
              flush=True)  # fmt: skip


def dp_scaling(seed: int) -> None:
    """Print the DP's time and peak memory on a synthetic 50-layer, 25M-weight problem."""
    rng = np.random.default_rng(seed)
    sizes = {f"l{i}": int(s) for i, s in enumerate(rng.lognormal(12.5, 1.2, 50))}
    scale = 25_000_000 / sum(sizes.values())
    sizes = {n: max(1, int(s * scale)) for n, s in sizes.items()}
    curves = {n: np.sort(rng.random(101)) ** 4 for n in sizes}
    tracemalloc.start()
    start = time.perf_counter()
    dp_allocate(curves, sizes, sum(sizes.values()) // 10, buckets=10000)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"\nDP at ResNet-50 scale (50 layers, {sum(sizes.values())} weights, 101 ratios, "
          f"10000 buckets): {seconds:.2f} s, peak {peak:.1f} MiB")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", type=int, default=10000, help="training subset size")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--test", type=int, default=3000, help="test images scored")
    p.add_argument("--calib", type=int, default=128, help="calibration batch size")
    p.add_argument("--grid", type=float, default=0.02, help="ratio grid step of the curves")
    p.add_argument("--ft", type=int, default=2000, help="images in the one fine-tuning epoch")
    p.add_argument("--ft-lr", type=float, default=0.01)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7, 0.9, 0.95])
    p.add_argument("--budgets", type=float, nargs="+", default=[0.85, 0.7],
                   help="channel-pruning latency budgets, as fractions of the dense latency")
    p.add_argument("--iter-sparsities", type=float, nargs="+", default=[0.9, 0.95])
    p.add_argument("--rounds", type=int, default=3, help="rounds of the iterative comparisons")
    p.add_argument("--latency-batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings, for a smoke run")
    args = p.parse_args()
    if args.quick:
        args.train, args.epochs, args.test, args.ft, args.grid = 2000, 1, 1000, 500, 0.1
        args.sparsities, args.budgets, args.repeats = [0.5, 0.9], [0.7], 3
        args.iter_sparsities = [0.9]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.train)
    data = (splits.x_train, splits.y_train, splits.x_test[: args.test], splits.y_test[: args.test])
    print(f"Fashion-MNIST: {len(data[1])} training images, {len(data[3])} test images; "
          f"threads={args.threads}")  # fmt: skip
    for name, model in models().items():
        t0 = time.perf_counter()
        fit(model, data[0], data[1], epochs=args.epochs, lr=0.05, seed=args.seed)
        print(f"\n{name}: trained {args.epochs} epochs in {time.perf_counter() - t0:.0f} s")
        dense = copy.deepcopy(model)
        curves = unstructured(name, dense, data, args)
        high_sparsity(name, dense, data, args, curves)
        iterative(name, dense, data, args, curves)
        structured(name, dense, data, args)
    dp_scaling(args.seed)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
