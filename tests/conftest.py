import os
from pathlib import Path

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
