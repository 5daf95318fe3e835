"""The segmentation U-Net (compzoo/models/segmenter.py) and its objective: any image size, a loss that
ignores void pixels, learning that fits simple scenes, and mIoU counted right."""

import numpy as np
import pytest

from compzoo import metrics, models
from compzoo.models import segmenter
from compzoo.train.registry import make_objective
from experiments.configs import feature_net
from train_helpers import run_steps

VOID = 11


def _scenes(i, n=4, size=32):
  """Two classes by colour (bright sky over a dark road) and a void strip: learnable from colour alone."""
  rng = np.random.default_rng(i)
  images = np.zeros((n, size, size, 3), np.uint8)
  labels = np.zeros((n, size, size), np.int32)
  for image, label in zip(images, labels):
    horizon = rng.integers(8, size - 8)
    image[:horizon], label[:horizon] = rng.integers(150, 255, 3), 0
    image[horizon:], label[horizon:] = rng.integers(0, 100, 3), 3
    label[:, :2] = VOID
  return {"image": images, "label_map": labels}


def test_logits_and_features_for_any_size():
  model = models.build(dict(name="segmenter", classes=11, width=4))
  logits = model.segment(np.zeros((2, 37, 53, 3), np.uint8))
  assert logits.shape == (2, 37, 53, 11)
  assert model.features(np.zeros((3, 20, 30, 3), np.uint8)).shape == (3, 32)
  assert segmenter.predict(model, np.zeros((1, 9, 17, 3), np.uint8)).shape == (1, 9, 17)


def test_the_loss_is_the_mean_cross_entropy_over_labelled_pixels():
  model = models.build(dict(name="segmenter", classes=11, width=4))
  batch = _scenes(0, 2)
  loss, terms = make_objective(dict(name="segmentation", ignore=VOID)).loss(model, batch, None)
  logits = np.asarray(model.segment(batch["image"]), np.float64)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  labels = batch["label_map"]
  keep = labels != VOID
  expected = -np.take_along_axis(log_p, np.where(keep, labels, 0)[..., None], -1)[..., 0][keep].mean()
  assert float(loss) == pytest.approx(expected, rel=1e-4)
  assert 0.0 <= float(terms["accuracy"]) <= 1.0


def test_tiny_config_fits_simple_scenes():
  config = feature_net.get_config("tiny-camvid")
  model = models.build(config.model)
  optimizer = dict(config.optimizer, learning_rate=1e-2, warmup=0, schedule="constant")
  model, history = run_steps(model, make_objective(config.objective), optimizer, _scenes, 60)
  assert float(history[-1]["loss"]) < 0.5 * float(history[0]["loss"])
  test = _scenes(99)
  counts = metrics.confusion(segmenter.predict(model, test["image"]), test["label_map"], 11, VOID)
  assert segmenter.mean_iou(counts)[0] > 0.8


def test_mean_iou_counts_right():
  labels = np.array([[0, 0, 1, VOID]])
  predicted = np.array([[0, 1, 1, 0]])
  counts = metrics.confusion(predicted, labels, 3, VOID)
  assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
  miou, iou = segmenter.mean_iou(counts)
  assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and np.isnan(iou[2])
  assert miou == pytest.approx(0.5)
