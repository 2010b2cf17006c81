"""Benchmarks: capture with streaming statistics against a bare forward pass and against keeping
every hidden state; the known-entropy source's sampling and exact-NLL throughput; student
training throughput and model-FLOPs utilisation; the scaling-law fit time; and, on request, the
notebooks' run times per profile.

    python benchmarks/run.py [--sections capture source train fit] [--notebook [PROFILE ...]]

Throughput ratios are measured side by side in one process (rounds interleaved, median
reported); peak memory is measured in a fresh process per mode and window count, so that one
mode's allocations cannot hide another's.  Results are printed and written to
benchmarks/results/capture.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scaling_utils.capture import capture_statistics, forward  # noqa: E402
from scaling_utils.clt import length_grid  # noqa: E402
from scaling_utils.data import load_corpus, random_windows, tokenize  # noqa: E402
from scaling_utils.models import load_model  # noqa: E402
from scaling_utils.stats import total_variance  # noqa: E402


def setup(args):
    lm = load_model(device=args.device, attn_implementation=args.attention)
    tokens = tokenize(load_corpus("wikipedia"), lm.tokenizer)
    windows = random_windows(tokens, args.windows, args.length, seed=0)
    return lm, windows, length_grid(4, args.length)


def bare(lm, windows, lengths, batch):
    for start in range(0, len(windows), batch):
        forward(lm.model, torch.as_tensor(windows[start:start + batch], device=lm.device))


def streaming(lm, windows, lengths, batch):
    return capture_statistics(lm.model, windows, lengths, batch_size=batch,
                              n_groups=min(16, len(windows)), progress=False)


def keep_all(lm, windows, lengths, batch):
    """The naive route: keep every hidden state of every position, then reduce."""
    kept = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch):
            ids = torch.as_tensor(windows[start:start + batch], device=lm.device)
            out = lm.model(input_ids=ids, use_cache=False, logits_to_keep=1,
                           output_hidden_states=True)
            kept.append([h.cpu() for h in out.hidden_states])
    stacked = [torch.cat([k[i] for k in kept])[:, lengths - 1].double() for i in range(len(kept[0]))]
    return [((h - h.mean(0)) ** 2).sum(-1).mean(0) for h in stacked]


MODES = {"bare": bare, "capture": streaming, "keep_all": keep_all}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(args) -> dict:
    lm, windows, lengths = setup(args)
    bare(lm, windows[: args.batch], lengths, args.batch)  # warm-up
    times = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode, fn in MODES.items():
            sync(lm.device)
            start = time.perf_counter()
            fn(lm, windows, lengths, args.batch)
            sync(lm.device)
            times[mode].append(time.perf_counter() - start)
    tokens = windows.size
    med = {mode: statistics.median(t) for mode, t in times.items()}
    return {"device": str(lm.device), "attention": args.attention, "windows": args.windows,
            "length": args.length, "batch": args.batch, "rounds": args.rounds,
            "tokens_per_s": {m: tokens / t for m, t in med.items()},
            "capture_over_bare": med["bare"] / med["capture"],
            "capture_over_keep_all": med["keep_all"] / med["capture"]}


class PeakRSS:
    """Highest resident set size of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self):
        import threading
        import psutil
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def peak_memory(args) -> dict:
    """Peak memory above the loaded model of one mode in this fresh process (GPU: allocated
    bytes; CPU: resident set size)."""
    lm, windows, lengths = setup(args)
    bare(lm, windows[: args.batch], lengths, args.batch)  # allocator warm-up, as in `throughput`
    if lm.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with PeakRSS() as rss:
        result = MODES[args.mode](lm, windows, lengths, args.batch)
    if lm.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = rss.peak - rss.start
    kept = 0
    if args.mode == "capture":
        kept = sum(m.total.nbytes + m.total_sq.nbytes + m.count.nbytes for m in result.moments.values())
        assert np.isfinite(total_variance(next(iter(result.moments.values()))).variance).all()
    return {"mode": args.mode, "windows": args.windows, "peak_bytes_above_model": int(peak),
            "statistics_bytes": int(kept)}


def memory_table(args) -> list[dict]:
    rows = []
    for mode in ("bare", "capture", "keep_all"):
        for n in (args.windows, 2 * args.windows):
            cmd = [sys.executable, __file__, "--mode", mode, "--windows", str(n), "--length",
                   str(args.length), "--batch", str(args.batch), "--attention", args.attention]
            if args.device:
                cmd += ["--device", args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def notebook_times(profiles) -> list[dict]:
    """Wall time of each chapter notebook per profile, each with an empty result cache (the
    one-time conversion of the offline model stays cached, as it is after a first run)."""
    import os
    import tempfile
    from scaling_utils.cache import cache_dir
    models = os.environ.get("SCALING_UTILS_MODEL_CACHE") or str(cache_dir() / "models")
    rows = []
    for notebook in ("theorem1_clt", "theorem2_bias_variance"):
        for profile in profiles:
            with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                subprocess.run([sys.executable, str(REPO / "scripts" / "build_book.py"),
                                "--profile", profile, "--root", root, "--only", notebook,
                                "--no-site"], check=True, capture_output=True,
                               env={**os.environ, "SCALING_UTILS_CACHE": cache,
                                    "SCALING_UTILS_MODEL_CACHE": models})
                rows.append({"notebook": notebook, "profile": profile,
                             "seconds": round(time.perf_counter() - start, 1)})
    return rows


def source_throughput() -> dict:
    """Sampling and exact-NLL speed of the sparse128 source (tokens per second)."""
    from scaling_utils.synthetic import preset_source
    source = preset_source("sparse128", 0)
    source.sample(100, 64, seed=0)  # warm-up
    start = time.perf_counter()
    tokens = source.sample(4000, 256, seed=1)
    sample_s = time.perf_counter() - start
    rates = {}
    for dtype in (torch.float64, torch.float32):
        start = time.perf_counter()
        source.nll(tokens, dtype=dtype)
        rates[str(dtype).removeprefix("torch.")] = tokens.size / (time.perf_counter() - start)
    return {"tokens": int(tokens.size), "sample_tokens_per_s": tokens.size / sample_s,
            "nll_tokens_per_s": rates}


def matmul_peak(device: torch.device, size: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matmul FLOP/s on this device (the denominator of MFU)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def training_throughput(device) -> list[dict]:
    """Tokens per second and model-FLOPs utilisation, 6 N tokens / time over the measured matmul
    peak, with N all parameters that take part in matmuls (the tied output head included)."""
    from scaling_utils import train
    from scaling_utils.models import pick_device
    from scaling_utils.synthetic import preset_source
    device = pick_device(device)
    source = preset_source("sparse128", 0)
    eval_tokens, _, _ = train.evaluation_set(source, 32, 64, seed=5)
    peak = matmul_peak(device)
    rows = []
    for spec in (train.StudentSpec(1, 16, 2), train.StudentSpec(2, 64, 4), train.StudentSpec(2, 128, 4)):
        config = train.TrainConfig(spec, tokens=64 * 32 * 40, vocab_size=source.n_symbols, n_evals=1)
        result = train.train_student(config, source, eval_tokens, device=device)
        model = train.build_student(spec, source.n_symbols, 64)
        n_matmul = sum(p.numel() for p in model.parameters())  # tied embedding = output head
        rows.append({"spec": f"{spec.n_layers}x{spec.d_model}", "non_embedding": result.n_parameters,
                     "tokens_per_s": result.tokens_per_second,
                     "mfu": 6 * n_matmul * result.tokens_per_second / peak,
                     "matmul_peak_gflops": peak / 1e9})
    return rows


def fit_time() -> dict:
    """Seconds for the grid-of-starts Chinchilla fit on 240 noisy synthetic points."""
    from scaling_utils.scaling_law import fit_chinchilla
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e10, 16), 15)
    D = np.tile(np.geomspace(1e9, 1e12, 15), 16)
    L = (1.8 + 480 / N ** 0.35 + 2000 / D ** 0.37) * np.exp(rng.normal(0, 0.005, N.size))
    start = time.perf_counter()
    fit_chinchilla(N, D, L)
    return {"points": int(N.size), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="*", default=["capture", "source", "train", "fit"],
                        choices=["capture", "source", "train", "fit"])
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--notebook", nargs="*", metavar="PROFILE",
                        help="also time the chapter notebooks with these profiles (default smoke cpu)")
    args = parser.parse_args()
    if args.mode:  # child process of memory_table
        print(json.dumps(peak_memory(args)))
        return
    report = {}
    if "capture" in args.sections:
        report["throughput"] = throughput(args)
        report["memory"] = memory_table(args)
    if "source" in args.sections:
        report["source"] = source_throughput()
    if "train" in args.sections:
        report["training"] = training_throughput(args.device)
    if "fit" in args.sections:
        report["fit"] = fit_time()
    if args.notebook is not None:
        report["notebook"] = notebook_times(args.notebook or ["smoke", "cpu"])
    out = REPO / "benchmarks" / "results" / "benchmarks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if "throughput" in report:
        t = report["throughput"]
        print(f"capture: device {t['device']}, {t['attention']} attention, {t['windows']} windows "
              f"x {t['length']} tokens, batch {t['batch']}")
        for mode, rate in t["tokens_per_s"].items():
            print(f"  {mode:9s} {rate:9.1f} tokens/s")
        print(f"  capture / bare forward throughput: {t['capture_over_bare']:.3f} (target >= 0.9)")
        print(f"  capture / keep-all throughput:     {t['capture_over_keep_all']:.3f}")
        for row in report["memory"]:
            print(f"  peak memory {row['mode']:8s} {row['windows']:4d} windows: "
                  f"{row['peak_bytes_above_model'] / 2**20:8.1f} MiB "
                  f"(statistics kept {row['statistics_bytes'] / 2**20:.1f} MiB)")
    if "source" in report:
        r = report["source"]
        print(f"source sparse128: sample {r['sample_tokens_per_s']:,.0f} tokens/s; exact NLL "
              + ", ".join(f"{k} {v:,.0f}" for k, v in r["nll_tokens_per_s"].items())
              + " tokens/s (target >= 1e6)")
    for row in report.get("training", []):
        print(f"train {row['spec']:7s} ({row['non_embedding']:,} non-embedding): "
              f"{row['tokens_per_s']:,.0f} tokens/s, MFU {row['mfu']:.1%} of a measured "
              f"{row['matmul_peak_gflops']:.0f} GFLOP/s")
    if "fit" in report:
        print(f"fit_chinchilla on {report['fit']['points']} points: {report['fit']['seconds']:.1f} s (target < 30)")
    for row in report.get("notebook", []):
        print(f"notebook {row['notebook']} ({row['profile']}): {row['seconds']} s")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
