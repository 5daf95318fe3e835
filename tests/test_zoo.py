"""Walks every zoo entry: it builds at its defaults and at every sweep point, round-trips an image,
keeps its name canonical, and is exact exactly when it claims to be lossless; learned entries state a
decode guarantee that matches their model."""

from pathlib import Path

import numpy as np
import pytest

from compzoo import bitstream, exports, models, zoo
from compzoo.codecs import classic
from compzoo.codecs.base import fit_image, sample_side
from compzoo.errors import UsageError
from train_helpers import tiny_config

ENTRIES = sorted(zoo.entries())
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image():
  import skimage.data

  return np.ascontiguousarray(skimage.data.astronaut()[100:164, 180:276])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  """An export for the 'learned' entry, which takes a user's weights."""
  config = tiny_config()
  return exports.write(tmp_path_factory.mktemp("learned"), config, models.build(config.model))


@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRIES)
def test_entry(name, image, weights):
  entry = zoo.get(name)
  assert entry.description and entry.kind in ("classic", "fitted", "learned")
  if entry.modality == "signal":
    image = np.cumsum(np.random.default_rng(0).integers(-30, 31, (300, 1)), axis=0).astype(np.int16)
  if name == "pixelcnn":  # one network pass per pixel: a smaller crop keeps the walk quick
    image = np.ascontiguousarray(image[:16, :24])
  image = fit_image(image, zoo.make_codec(name, weights=weights if entry.needs_weights else None))
  for spec in [name] + zoo.sweep_names(entry):
    codec = zoo.make_codec(spec, weights=weights if entry.needs_weights else None)
    assert zoo.parse_codec_name(codec.name)[0] == name
    assert zoo.make_codec(codec.name, weights=weights if entry.needs_weights else None).name == codec.name
    payload = codec.compress(image, **sample_side(codec, image))
    assert bitstream.unpack(payload).codec == codec.name
    decoded = codec.decompress(payload)
    if entry.modality == "signal":
      decoded = decoded.samples
    assert decoded.shape == image.shape
    assert np.array_equal(decoded, image) == codec.lossless
    if entry.lossless is not None:
      assert codec.lossless == entry.lossless
  if entry.lossless is False:  # learned entries ship one checkpoint per point, so fewer
    points = len(entry.sweep) or sum(e.curve() == entry.curve() for e in zoo.entries().values())
    assert points >= (5 if entry.kind == "classic" else 2), "lossy entries need an RD sweep or a family"
  if entry.kind == "learned" and not entry.needs_weights:
    assert entry.checkpoint and (ROOT / entry.checkpoint).is_dir()
    assert entry.guarantee == codec.guarantee == type(codec.model).DECODE_GUARANTEE
    tables = codec.weights_path / exports.TABLES_FILE
    # Coding tables ship wherever the model has weight-only tables (every exact and shipped-tables entry, and
    # mbt2018-mean's, whose table choice is float); L3C's come from the network, a JPEG carries its own.
    assert tables.is_file() == (getattr(codec.model, "coding_tables", lambda: None)() is not None)
    assert tables.is_file() >= (entry.guarantee in ("exact", "shipped-tables"))


def test_duplicate_names_are_refused():
  with pytest.raises(UsageError, match="declared twice"):
    zoo._collect(classic, classic)


def test_the_makefile_reads_its_lists_from_the_catalogue():
  """make dplc-mnist, refine and latent-tasks loop over the catalogue's lists, not copies of them."""
  import shutil
  import subprocess
  from compzoo.codecs import catalogue
  if shutil.which("make") is None or not Path(".venv/bin/python").exists():
    pytest.skip("needs make and the project's .venv (make test has both)")
  printer = "print-%:\n\t@echo '$($*)'\n"
  expand = lambda name: subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", f"print-{name}"],
                                       input=printer, capture_output=True, text=True, check=True).stdout.split()
  assert expand("DPLC_RATES_cifar10") == [str(r) for r in catalogue.DPLC_RATES["cifar10"] if r]
  assert expand("REFINE_RULES") == list(catalogue.REFINE_RULES)
  assert expand("REFINE_JPEG") == [",".join(f"jpeg:quality={q}" for q in catalogue.REFINE_QUALITIES)]
