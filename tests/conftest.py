import os
from pathlib import Path

from compzoo import compile_cache

# Test processes (pytest workers and the apps they start) share compiled XLA programs through a persistent
# cache kept with the suite's other caches: a program is compiled once per suite run, not once per process,
# and a second run compiles almost nothing. Unbounded (no lock, no eviction scan per write: the suite writes
# thousands of entries) and keeping programs down to 10 ms of compile time, the eager ops of model set-up
# included. COMPZOO_COMPILE_CACHE=off measures a suite that compiles everything.
if not os.environ.get(compile_cache.ENV):
  os.environ[compile_cache.ENV] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation")
compile_cache.enable(bounded=False, min_compile_seconds=0.01)
# LLVM at -O1 instead of XLA's default: threefry's random-number kernels, in every initialiser and every
# noisy training step, take 0.8 s each to compile at the default level and 0.13 s at 1, and the suite's
# programs run as fast (tests/test_dplc.py, test_refine.py, test_cpm.py: 25% faster in all). Results agree
# within each process and its children, which inherit the flag; tests/test_cross_process.py decodes in a
# process with other settings on purpose.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = Path(os.environ.get("COMPZOO_KODAK", SHARED / "data" / "kodak"))


@pytest.fixture
def rng():
  return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def kodak_dir():
  if not KODAK.is_dir():
    pytest.skip(f"Kodak set not found at {KODAK} (set COMPZOO_KODAK)")
  return KODAK


@pytest.fixture(scope="session")
def astronaut():
  import skimage.data

  return skimage.data.astronaut()
