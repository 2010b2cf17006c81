"""Benchmarks: capture with streaming statistics against a bare forward pass and against keeping
every hidden state; the known-entropy source's sampling and exact-NLL throughput; student
training throughput and model-FLOPs utilisation; the scaling-law fit time; and, on request, the
notebooks' run times per profile.

    python benchmarks/run.py [--sections capture source train fit] [--books [PROFILE ...]]

Throughput ratios are measured side by side in one process (rounds interleaved, median
reported); peak memory is measured in a fresh process per mode and window count, so that one
mode's allocations cannot hide another's.  Everything is printed as one table and written, with
the machine it ran on, to benchmarks/results/benchmarks.json, which the book's reproducibility
page renders.
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
RESULTS = REPO / "benchmarks" / "results" / "benchmarks.json"
TEACHING_TIMES = REPO / "teaching" / "times.json"  # tracked: read by the instructors' page
sys.path.insert(0, str(REPO))

from scaling_utils.cache import atomic_write_bytes  # noqa: E402
from scaling_utils.capture import capture_statistics, forward  # noqa: E402
from scaling_utils.chapters.t1_clt import length_grid  # noqa: E402
from scaling_utils.data import load_corpus, random_windows, tokenize  # noqa: E402
from scaling_utils.models import load_model  # noqa: E402
from scaling_utils.estimators.moments import total_variance  # noqa: E402


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
    """Highest resident set size of this process while the block runs, above its size on entry.
    On Linux the kernel's own high-water mark (VmHWM, reset on entry through
    /proc/self/clear_refs), so no short peak is missed; elsewhere sampled every 5 ms."""

    def __enter__(self):
        import threading
        import psutil
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._kernel = _reset_high_water_mark()
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
        if self._kernel:
            self.peak = max(self.peak, _status_bytes("VmHWM"))


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def peak_memory(args) -> dict:
    """Peak memory above the loaded model of one mode in this fresh process (GPU: allocated
    bytes; CPU: resident set size, measured from the model loaded and the windows drawn, with no
    earlier forward pass whose retained buffers could hide part of the peak)."""
    lm, windows, lengths = setup(args)
    if lm.device.type == "cuda":
        bare(lm, windows[: args.batch], lengths, args.batch)  # allocator warm-up
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


# Targets stated in the issues, per notebook and profile (seconds with an empty result cache).
NOTEBOOK_TARGETS = {("theorem1_clt", "smoke"): 60, ("theorem1_clt", "cpu"): 300,
                    ("theorem2_bias_variance", "cpu"): 360}
PAIR_TARGETS = {("theorem3_snr", "theorem4_emergence", "cpu"): 480}


def book_times(profiles, jobs: int | None = None, only: list[str] | None = None) -> list[dict]:
    """Wall time of every notebook of the book per profile, executed in build order with an
    empty result cache (the one-time conversion of the offline model stays cached, as it is
    after a first run), the total, and where it went: the seconds spent computing each kind of
    cached result (``phase`` rows: training, captures, simulated worlds, ...). ``jobs``: notebooks
    at once (default the build's; 1 gives each notebook's time alone); ``only``: these notebooks."""
    import os
    import tempfile
    from scaling_utils.cache import cache_dir, phase_seconds
    models = os.environ.get("SCALING_UTILS_MODEL_CACHE") or str(cache_dir() / "models")
    rows = []
    for profile in profiles:
        with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(REPO / "scripts" / "build_book.py"),
                            "--profile", profile, "--root", root, "--no-site"]
                           + ([f"--jobs={jobs}"] if jobs else [])
                           + (["--only", *only] if only else []), check=True,
                           capture_output=True,
                           env={**os.environ, "SCALING_UTILS_CACHE": cache,
                                "SCALING_UTILS_MODEL_CACHE": models})
            total = time.perf_counter() - start
            log = json.loads((Path(root) / "book" / "executed" / "build_log.json").read_text())
            phases = phase_seconds(cache)
        rows += [{"notebook": r["notebook"], "profile": profile, "seconds": r["seconds"]}
                 for r in log]
        rows += [{"phase": kind, "profile": profile, "seconds": seconds}
                 for kind, seconds in phases.items()]
        rows.append({"notebook": "(all, without the site)", "profile": profile,
                     "seconds": round(total, 1)})
    return rows


def record_teaching_times(path: Path | None = None) -> None:
    """Every notebook's time alone (one at a time, empty result cache) at the smoke and cpu
    profiles, with the machine and commit, for the instructors' page."""
    from scaling_utils.runinfo import run_info
    # every page but the instructors' own, which reads this record
    pages = sorted(p.stem for p in (REPO / "notebooks").glob("*.md") if p.stem != "instructors")
    rows = book_times(["smoke", "cpu"], jobs=1, only=pages)
    info = run_info()
    record = {"profiles": {p: {r["notebook"]: r["seconds"] for r in rows
                               if r.get("profile") == p and "notebook" in r
                               and not r["notebook"].startswith("(")} for p in ("smoke", "cpu")},
              "commit": info.commit, "cores": info.cores, "cpu": info.cpu,
              "written": time.strftime("%Y-%m-%d")}
    atomic_write_bytes(path or TEACHING_TIMES, json.dumps(record, indent=1).encode())
    print(json.dumps(record, indent=1))


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
    specs = [train.StudentSpec(1, 16, 2), train.StudentSpec(2, 64, 4), train.StudentSpec(2, 128, 4)]
    if device.type == "cuda":  # the largest student of the gpu profile
        specs.append(train.StudentSpec(4, 256, 8))
    for spec in specs:
        batch = 256 if device.type == "cuda" else 32  # a GPU needs big batches to be busy
        config = train.TrainConfig(spec, D=64 * batch * 40, vocab_size=source.n_symbols,
                                   batch_size=batch, n_evals=1)
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
    from scaling_utils.estimators.chinchilla import fit_chinchilla
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e10, 16), 15)
    D = np.tile(np.geomspace(1e9, 1e12, 15), 16)
    L = (1.8 + 480 / N ** 0.35 + 2000 / D ** 0.37) * np.exp(rng.normal(0, 0.005, N.size))
    start = time.perf_counter()
    fit_chinchilla(N, D, L)
    return {"points": int(N.size), "seconds": time.perf_counter() - start}


def table(report: dict) -> list[dict]:
    """The report as one flat table: section, what was measured, value, unit, target."""
    rows = []

    def add(section, measure, value, unit, target=""):
        rows.append({"section": section, "measure": measure, "value": float(value), "unit": unit,
                     "target": target})

    for t in report.get("throughput", []):
        where = f"{t['device']}, {t['windows']} x {t['length']} tokens, batch {t['batch']}"
        for mode, rate in t["tokens_per_s"].items():
            add("capture", f"{mode} forward ({where})", rate, "tokens/s")
        add("capture", f"capture / bare forward ({t['device']})", t["capture_over_bare"], "ratio",
            ">= 0.9")
        add("capture", f"capture / keep every hidden state ({t['device']})",
            t["capture_over_keep_all"], "ratio")
    for m in report.get("memory", []):
        add("capture memory", f"{m['mode']}, {m['windows']} windows ({m['device']})",
            m["peak_bytes_above_model"] / 2**20, "MiB above the model")
    if "source" in report:
        r = report["source"]
        add("source", "sparse128 sampling", r["sample_tokens_per_s"], "tokens/s")
        for dtype, rate in r["nll_tokens_per_s"].items():
            add("source", f"exact NLL, {dtype}", rate, "tokens/s", ">= 1e6")
    for r in report.get("training", []):
        add("training", f"student {r['spec']} ({r['non_embedding']:,} non-embedding), {r['device']}",
            r["tokens_per_s"], "tokens/s")
        add("training", f"student {r['spec']} MFU (of {r['matmul_peak_gflops']:.0f} GFLOP/s "
            f"measured), {r['device']}", r["mfu"], "fraction",
            ">= 0.30 on an H100 (largest)" if r["device"] == "cuda" else "")
    if "fit" in report:
        add("fit", f"fit_chinchilla, {report['fit']['points']} points", report["fit"]["seconds"],
            "s", "< 30")
    books = [r for r in report.get("books", []) if "notebook" in r]
    for r in report.get("books", []):
        if "phase" in r:
            add("book phases", f"computing '{r['phase']}' results ({r['profile']})",
                r["seconds"], "s")
    for r in books:
        target = NOTEBOOK_TARGETS.get((r["notebook"], r["profile"]))
        add("book", f"{r['notebook']} ({r['profile']})", r["seconds"], "s",
            f"< {target}" if target else "")
    for (a, b, profile), target in PAIR_TARGETS.items():
        pair = [r["seconds"] for r in books if r["profile"] == profile and r["notebook"] in (a, b)]
        if len(pair) == 2:
            add("book", f"{a} + {b} ({profile})", sum(pair), "s", f"< {target}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="*", default=["capture", "source", "train", "fit"],
                        choices=["capture", "source", "train", "fit"])
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--devices", nargs="*", default=None,
                        help="devices to measure capture and training on (default: cpu, and cuda "
                             "when there is one)")
    parser.add_argument("--device", default=None, help=argparse.SUPPRESS)  # child processes
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--books", nargs="*", metavar="PROFILE",
                        help="also time every notebook of the book with these profiles "
                             "(default smoke cpu), each with an empty result cache")
    parser.add_argument("--teaching", action="store_true",
                        help="only time every notebook alone at the smoke and cpu profiles and "
                             f"record the times for the instructors' page ({TEACHING_TIMES.relative_to(REPO)})")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="JSON file the table is written to (read by the reproducibility page)")
    args = parser.parse_args()
    if args.mode:  # child process of memory_table
        print(json.dumps(peak_memory(args)))
        return
    if args.teaching:
        record_teaching_times()
        return
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report = {"devices": devices}
    for device in devices:
        args.device = device
        if "capture" in args.sections:
            report.setdefault("throughput", []).append(throughput(args))
            report.setdefault("memory", []).extend({**m, "device": device}
                                                   for m in memory_table(args))
        if "train" in args.sections:
            report.setdefault("training", []).extend({**r, "device": device}
                                                     for r in training_throughput(device))
    if "source" in args.sections:
        report["source"] = source_throughput()
    if "fit" in args.sections:
        report["fit"] = fit_time()
    if args.books is not None:
        report["books"] = book_times(args.books or ["smoke", "cpu"])
    from scaling_utils.runinfo import run_info
    info = run_info()
    report["machine"] = {"cpu": info.cpu, "cores": info.cores, "accelerator": info.accelerator,
                         "commit": info.commit, "when": time.strftime("%Y-%m-%d %H:%M")}
    report["table"] = table(report)
    atomic_write_bytes(args.out, json.dumps(report, indent=1).encode())
    width = max(len(r["measure"]) for r in report["table"])
    for r in report["table"]:
        print(f"{r['section']:15s} {r['measure']:{width}s} {r['value']:14,.3f} {r['unit']:20s} "
              f"{r['target']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
