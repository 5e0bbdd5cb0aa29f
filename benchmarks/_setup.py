"""Command-line and thread setup shared by the benchmark scripts.

This module must not import NumPy or PyTorch: :func:`set_threads` writes the thread
variables that OpenBLAS and OpenMP read when they are first loaded, so it has to run
before either library is imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The MovieLens "latest-small" folder used when --data is not given.
DEFAULT_MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_parser(description: str, *, threads: bool = True, data: bool = True
                ) -> argparse.ArgumentParser:
    """Return an argument parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats, a few seconds in total (smoke run)")
    if threads:
        parser.add_argument("--threads", type=int, default=1,
                            help="threads for NumPy's BLAS and for PyTorch (default 1)")
    if data:
        parser.add_argument("--data", default=str(DEFAULT_MOVIELENS),
                            help="MovieLens folder; the MovieLens rows are skipped when it "
                                 f"does not exist (default {DEFAULT_MOVIELENS})")
    return parser


def set_threads(count: int) -> dict[str, str]:
    """Set the BLAS and OpenMP thread variables to ``count`` and return what was set.

    Raises RuntimeError if NumPy is already imported, because OpenBLAS reads the
    variables only once, when it is loaded.
    """
    if count < 1:
        raise ValueError(f"--threads must be at least 1, got {count}")
    if "numpy" in sys.modules:
        raise RuntimeError("set_threads must run before NumPy is imported")
    settings = {name: str(count) for name in THREAD_VARIABLES}
    os.environ.update(settings)
    return settings


def blas_variables() -> dict[str, str]:
    """Return the OpenBLAS tuning variables present in the environment (printed for the record)."""
    return {name: value for name, value in os.environ.items()
            if name.startswith("OPENBLAS_") and name != "OPENBLAS_NUM_THREADS"}


def import_torch(threads: int):
    """Return the torch module with ``threads`` intra-op threads, or None if it is missing."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def print_settings(settings: dict[str, str], torch) -> None:
    """Print the thread settings and the BLAS variables, so a reader can rerun the same."""
    line = ", ".join(f"{name}={value}" for name, value in settings.items())
    if torch is not None:
        line += f", torch.set_num_threads({torch.get_num_threads()})"
    print(f"threads: {line}")
    extra = blas_variables()
    if extra:
        print("BLAS variables: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or "unknown" elsewhere."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def print_machine(torch) -> None:
    """Print the cores, CPU, Python, NumPy and its BLAS, and PyTorch (call after set_threads)."""
    import platform

    import numpy as np

    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # show_config's layout differs between NumPy versions
        pass
    line = (f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()},"
            f" NumPy {np.__version__} with {blas}")
    if torch is not None:
        torch_blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        line += f"; PyTorch {torch.__version__} with {torch_blas}"
    print(line)


def no_torch_message(what: str) -> None:
    """Print that a comparison was skipped because PyTorch is not installed."""
    print(f"PyTorch is not installed in this interpreter ({sys.executable}), so {what} "
          "was skipped. Run the script with an interpreter that has torch to compare.")
