"""The ECG models of issue #36: the learned lossless codec (its coding window function is its training
network, it codes any int16 signal exactly, its loss falls) and the CNN / CRNN classifiers (padding never
changes a prediction, their loss falls), and the study's helpers (augmentation, class weights, F1)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from compzoo import metrics, models, signals, zoo
from compzoo.codecs.learned import LearnedSignalCodec
from compzoo.data import ecg
from compzoo.data.signals import load_signal
from compzoo.errors import BitstreamError
from compzoo.models import ecg_classifier, ecg_lossless

SMALL = {"name": "ecg_lossless", "features": 8, "first_kernel": 4, "dilations": [2, 4], "linear_taps": 4,
         "components": 2}


def walk(length: int, channels: int = 1, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.cumsum(rng.integers(-25, 26, (length, channels)), axis=0).astype(np.int16)


@pytest.fixture(scope="module")
def lossless():
  model = models.build(SMALL, seed=0)
  # Non-zero heads, so the test sees every output of the window function.
  model.head.kernel[...] = 0.3 * jax.random.normal(jax.random.key(1), model.head.kernel.shape)
  model.linear.kernel[...] = 0.3 * jax.random.normal(jax.random.key(2), model.linear.kernel.shape)
  return model


@pytest.fixture(scope="module")
def codec(lossless):
  return LearnedSignalCodec("ecg-lossless:test", lossless, b"\x05" * 16)


def test_the_coding_window_function_is_the_training_network(lossless):
  x = walk(lossless.window + 40)[:, 0][None].astype(np.int32)
  every = np.asarray(lossless.params(x))[0]
  for start in (0, 13, 40):
    one = np.asarray(lossless.last_params(x[0, start:start + lossless.window]))[0]
    np.testing.assert_allclose(one, every[start], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length, channels", [(1, 1), (2, 1), (37, 1), (120, 2)])
def test_lossless_round_trips(codec, length, channels):
  x = walk(length, channels, seed=length)
  x[0, 0] = 32767 if length > 1 else -32768  # a jump across the whole range: escapes to far blocks
  decoded = codec.decompress(codec.compress(x))
  assert np.array_equal(decoded.samples, x)


def test_lossless_claims_are_bounded_by_the_stream(codec):
  from compzoo.bench import fuzz
  results = fuzz.check_crafted_headers(codec, walk(50), seconds=5.0)
  assert any("cannot hold" in message for _, _, message in results)
  assert fuzz.fuzz_codec(codec, walk(50), cases=40, seed=5).rejected == 40
  fuzz.fuzz_codec(codec, walk(50), cases=20, seed=6, rewrap=True)  # never a wrong signal, never a hang


def test_the_floor_on_scales_makes_the_bomb_bound_true(lossless):
  # The most a level can hold under one logistic of the smallest scale: tanh(0.25 / MIN_SCALE).
  assert -np.log2(np.tanh(0.25 / ecg_lossless.MIN_SCALE)) > ecg_lossless.MIN_BITS_PER_SAMPLE
  floor_in_levels = np.exp(lossless.mixture.min_log_scale) / (2.0 / (ecg_lossless.LEVELS - 1))
  np.testing.assert_allclose(floor_in_levels, ecg_lossless.MIN_SCALE, rtol=1e-6)


def test_lossless_training_lowers_the_bits():
  model = models.build(SMALL, seed=3)
  t = np.arange(4000)
  signal = (300 * np.sin(t / 9.0) + np.random.default_rng(0).normal(0, 3, t.size)).astype(np.int16)
  optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, batch):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m.bits(batch)))(model)
    optimizer.update(model, grads)
    return loss

  rng = np.random.default_rng(1)
  losses = [float(step(model, optimizer, ecg.context_crops([signal], model.window, 256, 8, rng))) for _ in range(60)]
  assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 1.0


def test_crops_carry_zeros_before_a_recording_starts():
  rng = np.random.default_rng(0)
  x = np.arange(1, 101, dtype=np.int16)
  batch = ecg.context_crops([x], window=50, crop=30, batch=64, rng=rng)
  assert batch.shape == (64, 80)
  for row in batch:
    nonzero = row[row != 0]
    assert np.array_equal(nonzero, np.arange(nonzero[0], nonzero[0] + len(nonzero)))  # real, consecutive samples
    assert np.all(row[:80 - len(nonzero)] == 0)  # zeros only before the start


def test_evaluation_chunks_cover_every_sample_once():
  x = walk(10000)[:, 0]
  chunks, mask = ecg.context_chunks(x, window=30, chunk=4096)
  assert mask.sum() == len(x) and chunks.shape == (3, 30 + 4096)
  assert np.array_equal(chunks[1, :30 + 5], x[4096 - 30:4096 + 5])


@pytest.fixture(scope="module", params=["cnn", "crnn"])
def classifier(request):
  model = models.build({"name": "ecg_classifier", "kind": request.param, "width": 4, "blocks": 2}, seed=0)
  model.eval()
  return model


def test_padding_never_changes_a_prediction(classifier):
  x = np.random.default_rng(0).normal(0, 200, (2, 700)).astype(np.float32)
  lengths = np.array([700, 450])
  short = np.asarray(classifier(x, lengths))
  padded = np.asarray(classifier(np.pad(x, ((0, 0), (0, 900))), lengths))
  np.testing.assert_allclose(short, padded, rtol=1e-4, atol=1e-4)
  x2 = x.copy()
  x2[1, 450:] = 1e4  # what lies past a recording's length is never read
  np.testing.assert_allclose(np.asarray(classifier(x2, lengths)), short, rtol=1e-4, atol=1e-4)


def test_spectrogram_frames():
  assert ecg_classifier.frames(9000) == 281 and ecg_classifier.frames(64) == 1 and ecg_classifier.frames(10) == 1
  assert ecg_classifier.log_spectrogram(np.zeros((1, 9000))).shape == (1, 281, 33)


@pytest.mark.parametrize("kind", ["cnn", "crnn"])
def test_classifier_training_lowers_the_loss(kind):
  model = models.build({"name": "ecg_classifier", "kind": kind, "width": 4, "blocks": 2}, seed=0)
  rng = np.random.default_rng(0)
  t = np.arange(600)
  labels = rng.integers(0, 2, 16)
  x = np.stack([200 * np.sin(t / (3.0 if y else 12.0) + rng.uniform(0, 6)) for y in labels]).astype(np.float32)
  lengths = np.full(16, 600)
  optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, key):
    def loss_fn(m):
      logits = m(x, lengths, nnx.Rngs(dropout=key))
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer, jax.random.key(i))) for i in range(25)]
  assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])


def test_augmentation_resamples_and_zeroes_bursts():
  rng = np.random.default_rng(0)
  x = np.full(9000, 100.0)
  lengths, shares = [], []
  for _ in range(50):
    y = ecg.augment(x, rng)
    lengths.append(len(y) / len(x))
    shares.append(np.mean(y == 0))
  assert 2 / 3 - 1e-3 <= min(lengths) and max(lengths) < 4 / 3
  assert abs(np.mean(shares) - ecg.BURST_SHARE) < 0.02


def test_class_weights_and_scores():
  labels = np.array([0] * 60 + [1] * 10 + [2] * 25 + [3] * 5)
  weights = ecg.class_weights(labels)
  np.testing.assert_allclose(weights, 0.8 + 0.2 * 100 / np.array([60, 10, 25, 5]), rtol=1e-6)
  assert ecg.challenge_f1(labels, labels) == 1.0
  noisy = labels.copy()
  noisy[:10] = 3  # only N and the unscored noise class change
  f1 = metrics.f1_scores(labels, noisy, 4)
  assert f1[1] == f1[2] == 1.0 and f1[0] < 1.0
  low, high = metrics.bootstrap_interval(ecg.challenge_f1, labels, noisy, 200)
  assert low <= ecg.challenge_f1(labels, noisy) <= high < 1.0
  assert metrics.confusion(noisy, labels, 4)[0, 3] == 10


def test_a_signal_codec_refuses_a_file_of_other_weights(codec):
  other = LearnedSignalCodec("ecg-lossless:test", codec.model, b"\x06" * 16)
  with pytest.raises(BitstreamError, match="needs weights"):
    other.decompress(codec.compress(walk(10)))


# ------------------------------------------------------------------------------------- the shipped entries
CINC_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cinc2017" / "training2017-sample"


def recording(seconds: float = 12.0) -> np.ndarray:
  """A challenge recording's first seconds (A00001, normal rhythm), or an ECG-like walk without the data."""
  if (CINC_SAMPLE / "A00001.hea").is_file():
    return load_signal(CINC_SAMPLE / "A00001.hea").samples[:int(seconds * 300)]
  return walk(int(seconds * 300))


def test_shipped_lossless_codes_a_recording_exactly_and_beats_flac():
  x = recording(2.0)
  codec = zoo.make_codec("ecg-lossless")
  data = codec.compress(x)
  assert np.array_equal(codec.decompress(data).samples, x)
  if (CINC_SAMPLE / "A00001.hea").is_file():
    assert len(data) < len(zoo.make_codec("flac").compress(x))


def test_shipped_lossy_rates_order_and_their_latents_are_the_files():
  x = recording()
  sizes, prds = [], []
  for rate in ("low", "mid", "high"):
    codec = zoo.make_codec(f"ecg:rate={rate}")
    data = codec.compress(x)
    decoded = codec.decompress(data)
    assert decoded.samples.shape == x.shape and decoded.sample_rate == 300
    sizes.append(len(data))
    prds.append(signals.prd(x, decoded.samples))
    assert np.array_equal(codec.latents(data), codec.model.symbols_of_signal(x))
  assert sizes[0] < sizes[1] < sizes[2] and prds[0] > prds[1] > prds[2]
  if (CINC_SAMPLE / "A00001.hea").is_file():
    assert prds[1] < 15.0


def test_shipped_signal_codecs_refuse_bombs_and_damage():
  from compzoo.bench import fuzz
  for name in ("ecg-lossless", "ecg:rate=mid"):
    codec = zoo.make_codec(name)
    results = fuzz.check_crafted_headers(codec, walk(40), seconds=5.0)
    assert any("cannot hold" in message for _, _, message in results), name
  fuzz.fuzz_codec(zoo.make_codec("ecg:rate=mid"), walk(500), cases=100, seed=8)
  fuzz.fuzz_codec(zoo.make_codec("ecg:rate=mid"), walk(500), cases=40, seed=9, rewrap=True)


def test_infer_classifies_an_ecg_file_from_its_latents(tmp_path, capsys):
  from compzoo.cli import main
  x = tmp_path / "x.npy"
  np.save(x, recording()[:, 0])
  for name, file in (("ecg:rate=mid", "lossy.czoo"), ("ecg-lossless", "lossless.czoo")):
    assert main(["compress", "-m", name, str(x), str(tmp_path / file)]) == 0
  capsys.readouterr()
  assert main(["infer", "--task", "cinc2017", str(tmp_path / "lossy.czoo")]) == 0
  name, probability, source = capsys.readouterr().out.strip().split("\t")
  assert name in ecg.CLASS_NAMES and float(probability) <= 1.0 and source == "(from the file's latents)"
  assert main(["infer", "--task", "cinc2017", "--from-rgb", str(tmp_path / "lossy.czoo")]) == 0
  assert "decoded signal" in capsys.readouterr().out
  assert main(["infer", "--task", "cinc2017", str(tmp_path / "lossless.czoo")]) == 2  # lossless files have no latents
  assert "no cinc2017 network reads latents of 'ecg-lossless'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (CINC_SAMPLE.parent / "dev.npz").is_file(), reason="needs ../shared/data/cinc2017")
def test_the_ecg_apps_train_and_write_their_results(tmp_path):
  """The training apps end to end on tiny settings: each writes its export and result, and bad flags fail in one line."""
  import json
  import subprocess
  import sys
  data = str(CINC_SAMPLE.parent)
  run = lambda *argv: subprocess.run([sys.executable, "-m", *argv, f"--data={data}"], capture_output=True, text=True)
  done = run("experiments.ecg_lossless", f"--out={tmp_path}/lossless", "--steps=4", "--eval_every=2",
             "--choice_recordings=3", "--features=8", "--crop=64", "--batch=2")
  assert done.returncode == 0, done.stderr[-2000:]
  assert json.loads((tmp_path / "lossless" / "result.json").read_text())["steps"] == 4
  done = run("experiments.ecg_lossy", f"--out={tmp_path}", "--rates=mid", "--steps=4", "--eval_every=2",
             "--choice_recordings=3", "--crop=64", "--batch=2")
  assert done.returncode == 0, done.stderr[-2000:]
  assert (tmp_path / "ecg-mid" / "export" / "tables.msgpack").is_file()
  done = run("experiments.ecg_latent_tasks", f"--out={tmp_path}", f"--codecs=mid={tmp_path}/ecg-mid/export",
             "--paths=latent", "--epochs=1", "--max_recordings=24", "--batch=8", "--choice_recordings=3")
  assert done.returncode == 0, done.stderr[-2000:]
  assert json.loads((tmp_path / "ecg-tasks" / "results.json").read_text())["runs"][0]["path"] == "latent"
  done = run("experiments.ecg_classify", f"--out={tmp_path}/classify", "--kinds=crnn", "--augment=bursts+resample",
             "--seeds=1", "--epochs=1", "--max_recordings=40", "--bootstrap=20", "--width=4")
  assert done.returncode == 0, done.stderr[-2000:]
  assert len(json.loads((tmp_path / "classify" / "results.json").read_text())["runs"][0]["confusion"]) == 4
  bad = run("experiments.ecg_lossy", f"--out={tmp_path}", "--rates=max")
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: --rates takes")
