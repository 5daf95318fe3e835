"""The shared loop end to end: metrics.csv, TensorBoard, checkpoints, exact resume, export, the absl app."""

import csv
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from compzoo.errors import CompzooError, UsageError
from compzoo.checkpoints import Checkpoints
from compzoo.exports import PARAMS_FILE
from compzoo.train.loop import train_and_evaluate
from train_helpers import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _params(workdir):
  return serialization.msgpack_restore((Path(workdir) / "export" / PARAMS_FILE).read_bytes())


def _rows(workdir):
  with (Path(workdir) / "metrics.csv").open() as f:
    return list(csv.reader(f))


def test_run_writes_metrics_events_checkpoints_and_export(tmp_path):
  final = train_and_evaluate(tiny_config(), tmp_path, progress=False)
  rows = _rows(tmp_path)
  assert rows[0][0] == "step" and {"loss", "images_per_s", "interval_s"} <= set(rows[0])
  assert [int(r[0]) for r in rows[1:]] == [2, 4, 6]
  assert np.isclose(float(rows[-1][rows[0].index("loss")]), final["loss"], rtol=1e-5)
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  assert Checkpoints(tmp_path).latest_step() == 6
  assert (tmp_path / "export" / "config.json").is_file()


@pytest.mark.slow
def test_stopped_and_resumed_run_ends_with_the_same_parameters(tmp_path):
  config = tiny_config()
  train_and_evaluate(config, tmp_path / "straight", progress=False)
  train_and_evaluate(config, tmp_path / "resumed", stop_at=3, progress=False)
  assert not (tmp_path / "resumed" / "export").exists()
  assert Checkpoints(tmp_path / "resumed").latest_step() == 3
  train_and_evaluate(config, tmp_path / "resumed", progress=False)
  straight, resumed = _params(tmp_path / "straight"), _params(tmp_path / "resumed")
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  assert [int(r[0]) for r in _rows(tmp_path / "resumed")[1:]] == [2, 3, 4, 6]


def test_resuming_with_another_model_is_refused(tmp_path):
  train_and_evaluate(tiny_config(steps=1), tmp_path, progress=False)
  config = tiny_config(steps=2)
  config.model.latent = 4
  with pytest.raises(UsageError, match="holds a run with another model"):
    train_and_evaluate(config, tmp_path, progress=False)


def test_a_diverging_run_stops_with_a_clear_error(tmp_path):
  config = tiny_config(steps=2)
  config.optimizer.learning_rate = float("nan")
  with pytest.raises(CompzooError, match="loss became nan"):
    train_and_evaluate(config, tmp_path, progress=False)


@pytest.mark.parametrize("section, key, value, message", [
    ("model", "name", "nope", "unknown model"),
    ("model", "depth", 3, "bad settings"),
    ("objective", "name", "nope", "unknown objective"),
    ("data", "source", "nope", "unknown data source"),
    ("optimizer", "name", "nope", "unknown optimizer"),
    ("optimizer", "schedule", "nope", "unknown learning-rate schedule"),
])
def test_bad_configs_are_usage_errors(tmp_path, section, key, value, message):
  config = tiny_config(steps=1)
  config[section][key] = value
  with pytest.raises(UsageError, match=message):
    train_and_evaluate(config, tmp_path, progress=False)


def _train_app(*args):
  return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)


@pytest.mark.slow
def test_absl_app_trains_the_tiny_config_and_its_loss_falls(tmp_path):
  result = _train_app("--config=experiments/configs/bmshj2018_factorized.py:tiny", f"--workdir={tmp_path}",
                      "--config.data.source=embedded", "--config.train.steps=40", "--noprogress")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = _rows(tmp_path)
  losses = [float(r[rows[0].index("loss")]) for r in rows[1:]]
  assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_absl_app_reports_bad_input_in_one_line(tmp_path):
  result = _train_app("--config=experiments/configs/bmshj2018_factorized.py:tiny", f"--workdir={tmp_path}",
                      "--config.data.source=folder", f"--config.data.path={tmp_path}/missing", "--noprogress")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith("error: no such data folder")
  result = _train_app("--config=experiments/configs/bmshj2018_factorized.py:huge", f"--workdir={tmp_path}")
  assert result.returncode != 0 and "unknown variant" in result.stderr
  result = _train_app(f"--workdir={tmp_path}")
  assert result.returncode != 0 and "--config" in result.stderr
