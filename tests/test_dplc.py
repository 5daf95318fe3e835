"""Distribution-preserving compression (compzoo/models/dplc.py): each objective trains under its ``tiny``
config with its distribution term moving the right way; files round-trip to the decoder's output, bit for
bit and run after run; a rate-0 file decodes to the sample its seed chooses; bad input fails clearly."""

import jax
import numpy as np
import pytest
from flax import nnx

from compzoo import exports, models, zoo
from compzoo.codecs.catalogue import DPLC_RATES
from compzoo.codecs.learned import LearnedCodec
from compzoo.errors import BitstreamError, UsageError
from compzoo.train import groups
from compzoo.train.adversarial import mmd
from compzoo.train.registry import make_objective
from experiments.configs import dplc
from train_helpers import run_steps


def _bars(i, n=16):
  """Toy digits: one bright horizontal or vertical bar on black, 32×32 grey."""
  rng = np.random.default_rng(i)
  images = np.zeros((n, 32, 32, 1), np.uint8)
  for image, vertical, at in zip(images, rng.random(n) < 0.5, rng.integers(4, 24, n)):
    if vertical:
      image[4:28, at:at + 4] = 255
    else:
      image[at:at + 4, 4:28] = 255
  return {"image": images}


def _train(variant: str, steps: int, model):
  """``steps`` steps of the loop's own compiled step with the variant's objective, freezing and optimizer."""
  config = dplc.get_config(variant)
  optimizer = dict(config.optimizer, learning_rate=2e-3, warmup=0, schedule="constant")
  return run_steps(model, make_objective(config.objective), optimizer, _bars, steps,
                   groups.frozen_filter(model, config.train.freeze))


def _mean(history, key, part):
  values = [float(h[key]) for h in history]
  return np.mean(values[:5]) if part == "first" else np.mean(values[-5:])


def _latent_mmd(model, count=64):
  latents = model.encode(_bars(999, count)["image"], jax.random.PRNGKey(1))
  return float(mmd(latents, jax.random.normal(jax.random.PRNGKey(2), latents.shape)))


def _sample_gap(model):
  data_mean = _bars(500, 256)["image"].astype(np.float32).mean(0)
  return float(np.mean((np.asarray(model.sample(jax.random.PRNGKey(3), 256)).mean(0) - data_mean) ** 2))


@pytest.fixture(scope="module")
def generator():
  """Stage 1 of the WGAN codec at tiny size: (untrained gap, trained model, its history)."""
  model = models.build(dict(dplc.get_config("tiny-mnist-generator").model))
  before = _sample_gap(model)
  model, history = _train("tiny-mnist-generator", 60, model)
  return before, model, history


@pytest.mark.slow
def test_wgan_generator_moves_its_samples_towards_the_data(generator):
  before, model, history = generator
  assert all(np.isfinite(h["loss"]) and np.isfinite(h["wasserstein_estimate"]) for h in history)
  assert _sample_gap(model) < 0.5 * before, (before, _sample_gap(model))


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["wgan", "wae", "wpp", "mse"])
def test_codec_objectives_reconstruct_and_keep_the_code_near_the_prior(objective, generator):
  model = models.build(dict(dplc.get_config(f"tiny-mnist-{objective}").model, code_channels=4))
  if objective in ("wgan", "wpp"):  # both start from the stage-1 generator, as the shipped runs do
    nnx.update(model.generator, jax.tree.map(lambda x: x.copy(), nnx.state(generator[1].generator)))
  generator_before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model.generator)))
  mmd_before = _latent_mmd(model)
  model, history = _train(f"tiny-mnist-{objective}", 60, model)
  assert all(np.isfinite(h["loss"]) for h in history)
  # E and B alone cannot take far a frozen generator trained for 60 tiny steps: the shipped stage-2 runs
  # show the fall (docs/dplc.md); here the distortion must at least not rise while the code meets the prior
  factor = 1.0 if objective == "wgan" else 0.6
  assert _mean(history, "distortion", "last") < factor * _mean(history, "distortion", "first")
  generator_after = nnx.to_pure_dict(nnx.state(model.generator))
  same = jax.tree.leaves(jax.tree.map(np.array_equal, generator_before, generator_after))
  if objective == "wgan":  # the two-stage WGAN codec: G is frozen, only E and B learn
    assert all(same)
  else:
    assert not all(same)
  if objective in ("wgan", "wae", "wpp"):  # the MMD term holds B(E(x)) near N(0, I); MSE lets it drift
    assert _latent_mmd(model) < max(mmd_before, 0.05), (mmd_before, _latent_mmd(model))
  # the code's tables learn the symbols' frequencies: the coded rate falls below the nominal one
  assert history[-1]["bpp"] <= model.nominal_bits / 1024 + 1e-6


def _codec(tmp_path, code_channels: int, channels: int = 1) -> LearnedCodec:
  config = dplc.get_config("tiny-mnist-wae")
  config.model.code_channels = code_channels
  config.model.channels = channels
  model = models.build(config.model, seed=3)
  exports.write(tmp_path / f"export-{code_channels}-{channels}", config, model)
  return LearnedCodec.from_path(tmp_path / f"export-{code_channels}-{channels}", name="dplc-test")


def _digit(seed: int) -> np.ndarray:
  return np.repeat(_bars(seed, 1)["image"][0], 3, axis=-1)


@pytest.mark.parametrize("code_channels,channels", [(0, 1), (3, 1), (2, 3)])
def test_files_decode_to_the_decoders_output_bit_for_bit_and_run_after_run(tmp_path, code_channels, channels):
  codec = _codec(tmp_path, code_channels, channels)
  for seed in range(3):
    image = _digit(seed)
    files = [codec.compress(image) for _ in range(2)]
    assert files[0] == files[1]
    decoded = [codec.decompress(files[0]) for _ in range(2)]
    np.testing.assert_array_equal(decoded[0], decoded[1])
    np.testing.assert_array_equal(decoded[0], codec.model.reconstruct(image))
    assert decoded[0].shape == (32, 32, 3) and decoded[0].dtype == np.uint8


def test_a_rate_zero_file_holds_only_its_seed_and_decodes_to_that_seeds_sample(tmp_path):
  from compzoo import bitstream
  codec = _codec(tmp_path, 0)
  image = _digit(0)
  container = bitstream.unpack(codec.compress(image))
  assert [len(s) for s in container.streams] == [4]
  seed = int.from_bytes(container.streams[0], "big")
  code = np.zeros(codec.model.code_shape, np.int32)
  sample = codec.model.pixels_of_symbols({"code": code, "seed": np.asarray([seed], np.uint32)}, image.shape)
  np.testing.assert_array_equal(codec.decompress(codec.compress(image)), sample)
  other = codec.model.pixels_of_symbols({"code": code, "seed": np.asarray([seed + 1], np.uint32)}, image.shape)
  assert not np.array_equal(sample, other)  # the seed, not the image, chooses the sample


def test_bad_input_gets_clear_errors(tmp_path):
  codec = _codec(tmp_path, 3)
  with pytest.raises(UsageError, match="32×32"):
    codec.compress(np.zeros((28, 28, 3), np.uint8))
  data = codec.compress(_digit(1))
  with pytest.raises(BitstreamError):
    codec.decompress(data[:-2])
  with pytest.raises(UsageError, match="code channels"):
    zoo.make_codec("dplc-mnist-wgan:rate=3")


def test_nominal_rate_is_set_by_the_code_width():
  model = models.build(dict(dplc.get_config("tiny-mnist-wae").model, code_channels=5, levels=4))
  assert model.nominal_bits == 5 * 4 * 2
  assert model.positions == 20


SHIPPED = [name for dataset in DPLC_RATES for entry in zoo.group(f"dplc-{dataset}") for name in zoo.sweep_names(entry)]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_dplc_files_round_trip(name):
  codec = zoo.make_codec(name)
  image = _digit(7) if "mnist" in name else np.concatenate([_digit(seed)[..., :1] for seed in (7, 8, 9)], axis=-1)
  data = codec.compress(image)
  assert data == codec.compress(image)
  np.testing.assert_array_equal(codec.decompress(data), codec.model.reconstruct(image))


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_objective_ships_every_rate(dataset):
  entries = zoo.group(f"dplc-{dataset}")
  assert {e.name for e in entries} == {f"dplc-{dataset}-{o}" for o in ("wgan", "wae", "wpp", "mse")}
  assert len(DPLC_RATES[dataset]) >= 6 and DPLC_RATES[dataset][0] == 0
  for entry in entries:
    assert [p["rate"] for p in entry.sweep] == list(DPLC_RATES[dataset])


@pytest.mark.parametrize("rate", [0, 8])
def test_cli_round_trip_gives_the_decoders_output_on_two_runs(rate, tmp_path, capsys):
  from PIL import Image
  from compzoo import cli
  source = tmp_path / "digit.png"
  Image.fromarray(_digit(5)).save(source)
  name = f"dplc-mnist-wgan:rate={rate}"
  outputs = []
  for run in range(2):
    packed, restored = tmp_path / f"{run}.czoo", tmp_path / f"{run}.png"
    assert cli.main(["compress", "-m", name, str(source), str(packed)]) == 0
    assert cli.main(["decompress", str(packed), str(restored)]) == 0
    outputs.append((packed.read_bytes(), np.asarray(Image.open(restored))))
  capsys.readouterr()
  assert outputs[0][0] == outputs[1][0]
  np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
  np.testing.assert_array_equal(outputs[0][1], zoo.make_codec(name).model.reconstruct(_digit(5)))
