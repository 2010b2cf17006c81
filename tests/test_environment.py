"""The installed environment is the one the requirements pin: every ``name==version`` of
requirements/base.txt and cluster.txt is what is installed, and without an NVIDIA GPU PyTorch is
its CPU build (a CUDA build brings about 3 GB of libraries that a CPU never uses)."""

import re
import shutil
from importlib import metadata
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"


def _pins():
    for name in ("base.txt", "cluster.txt"):
        for line in (REQUIREMENTS / name).read_text().splitlines():
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
            if match:
                yield match.groups()


@pytest.mark.parametrize("name, version", list(_pins()))
def test_every_pinned_package_is_installed_at_its_pin(name, version):
    installed = metadata.version(name)
    assert installed.split("+")[0] == version, (
        f"{name} {installed} is installed, requirements pin {version}: run `make setup` again "
        "(it re-installs when a requirements file changes)")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="an NVIDIA GPU is present")
def test_pytorch_is_the_cpu_build_without_an_nvidia_gpu():
    import torch

    assert torch.version.cuda is None, (
        f"torch {torch.__version__} is a CUDA build on a machine without an NVIDIA GPU: "
        "reinstall it from https://download.pytorch.org/whl/cpu (`make setup` does)")


def test_a_plain_install_carries_every_subpackage():
    # Colab installs the package from git, not editable: every subpackage must be in it
    import tomllib

    from setuptools import find_packages
    REPO = REQUIREMENTS.parent
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(REPO), include=config["packages"]["find"]["include"]))
    on_disk = {".".join(p.parent.relative_to(REPO).parts)
               for p in (REPO / "scaling_utils").rglob("__init__.py")}
    assert on_disk <= found and "scaling_utils.chapters.t1_clt" in found
