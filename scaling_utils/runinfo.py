"""The environment a notebook ran in, captured at run time for the reproducibility pages."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata

import torch

PACKAGES = ("scaling-utils", "torch", "transformers", "numpy", "scipy", "pandas", "matplotlib",
            "seaborn", "gensim", "gguf", "accelerate", "papermill", "jupyter-book", "myst-nb",
            "sphinx-proof")


@dataclass(frozen=True)
class RunInfo:
    """Python, packages, hardware and source revision of one run."""

    python: str
    platform: str
    cpu: str
    cores: int
    accelerator: str
    commit: str
    packages: dict = field(default_factory=dict)


def run_info() -> RunInfo:
    """Collect the versions and hardware of this process."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if torch.cuda.is_available():
        accelerator = f"CUDA: {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        accelerator = "Apple MPS"
    else:
        accelerator = "none (CPU only)"
    return RunInfo(platform.python_version(), platform.platform(), _cpu_name(),
                   os.cpu_count() or 0, accelerator, git_commit(), versions)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """The short commit of the package's checkout ("unknown" outside one); "+" marks uncommitted
    changes."""
    here = os.path.dirname(__file__)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, cwd=here).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+" if dirty else "")) if head else "unknown"


def environment_table(info: RunInfo):
    """Python, platform, CPU, cores, accelerator and source revision as a two-column table."""
    import pandas as pd

    return pd.DataFrame({"": ["Python", "platform", "CPU", "cores", "accelerator",
                              "source revision"],
                         "value": [info.python, info.platform, info.cpu, info.cores,
                                   info.accelerator, info.commit]})


def build_times(log_path: str | os.PathLike | None):
    """The run time of every notebook of this build (the JSON log of scripts/build_book.py), or
    a sentence saying why there is none."""
    import json
    from pathlib import Path

    import pandas as pd

    if log_path is None or not Path(log_path).exists():
        return "No build log: this page was executed on its own, not by scripts/build_book.py."
    return pd.DataFrame(json.loads(Path(log_path).read_text()))
