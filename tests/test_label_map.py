"""The label-map coder (compzoo/entropy/label_map.py): lossless on every shape, wavefronts that respect the
causal neighbours, file bits that match the model's bits, learning that lowers them, clear errors."""

import numpy as np
import pytest

from compzoo.entropy import Decoder, Encoder
from compzoo.entropy import label_map as lm
from compzoo.entropy import tables
from compzoo.errors import BitstreamError, UsageError

CLASSES = 5


def _maps(seed, count=1, shape=(24, 32)):
  """Flat regions with straight boundaries, as in street scenes: a few random rectangles painted over."""
  rng = np.random.default_rng(seed)
  maps = np.zeros((count,) + shape, np.int32)
  for labels in maps:
    for _ in range(6):
      top, left = rng.integers(0, shape[0]), rng.integers(0, shape[1])
      labels[top:top + rng.integers(1, shape[0]), left:left + rng.integers(1, shape[1])] = rng.integers(0, CLASSES)
  return maps


def _trained(steps=150):
  model = lm.LabelMapModel(CLASSES)
  return model, lm.fit(model, (_maps(i % 8, 4) for i in range(steps)))


@pytest.mark.parametrize("neighbours", [lm.NEIGHBOURS, ((0, -1), (-1, 0))])  # label maps; cpm's importance
def test_wavefronts_visit_every_pixel_once_after_its_neighbours(neighbours):
  height, width = 5, 7
  time = np.full((height, width), -1)
  slope = tables.CausalContextTable(CLASSES, neighbours).slope
  for t, (rows, columns) in enumerate(tables._fronts(height, width, slope)):
    assert (time[rows, columns] == -1).all()
    time[rows, columns] = t
  assert (time >= 0).all()
  for y in range(height):
    for x in range(width):
      for dy, dx in neighbours:
        if 0 <= y + dy < height and 0 <= x + dx < width:
          assert time[y + dy, x + dx] < time[y, x]


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 7), (37, 53)])
def test_maps_of_every_shape_decode_exactly(shape):
  model = lm.LabelMapModel(CLASSES)
  table = model.coding_table()  # untrained: uniform rows
  rng = np.random.default_rng(sum(shape))
  for labels in (rng.integers(0, CLASSES, shape), np.zeros(shape, np.int64)):
    encoder = Encoder()
    model.coder.encode(encoder, labels, table)
    np.testing.assert_array_equal(model.coder.decode(Decoder(encoder.finish()), shape, table), labels)


def test_learning_lowers_the_bits_and_the_file_matches_the_model():
  model, history = _trained()
  assert history[-1] < 0.3 * history[0], history[::30]
  labels = _maps(99)[0]  # not a training map
  encoder = Encoder()
  model.coder.encode(encoder, labels, model.coding_table())
  data = encoder.finish()
  np.testing.assert_array_equal(model.coder.decode(Decoder(data), labels.shape, model.coding_table()), labels)
  model_bits = float(model.bits(labels[None])[0])
  assert 8 * len(data) < 1.05 * model_bits + 64
  assert model.coder.min_bits(labels.shape, model.coding_table()) <= 8 * len(data)


def test_bad_labels_and_short_streams_fail_clearly():
  model = lm.LabelMapModel(CLASSES)
  table = model.coding_table()
  with pytest.raises(UsageError, match="symbols must lie in"):
    model.coder.encode(Encoder(), np.full((2, 2), CLASSES), table)
  encoder = Encoder()
  model.coder.encode(encoder, _maps(1)[0], table)
  # a cut stream decodes to some map or fails as a bitstream error, never anything else: the container's
  # content check (the codec's) is what tells a wrong map from the right one
  try:
    labels = model.coder.decode(Decoder(encoder.finish()[:8]), (24, 32), table)
    assert labels.shape == (24, 32) and labels.min() >= 0 and labels.max() < CLASSES
  except BitstreamError:
    pass
