"""Shared test settings.

The tests multiply many tiny matrices, for which OpenBLAS's thread start-up costs more than
the arithmetic: with two threads on a loaded two-core machine one training epoch took 0.72 s,
and 0.16 s with one thread. One thread is therefore the default for the test process, unless
the caller set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) already. The variables only take
effect if set before NumPy loads OpenBLAS, which is why this runs at conftest import.
"""

import os
import sys

if "numpy" not in sys.modules:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# In CI (the CI variable set), hypothesis draws the same examples on every run, so two runs
# of the same code cannot disagree. Locally it explores new examples each run and keeps
# failing ones in its database.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
