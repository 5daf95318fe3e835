"""Context-model autoencoder: the context model computes exactly and causally, decoding gives the model's
own reconstruction at any size, streams match the model's bits, masked symbols are free, the loss falls,
and damaged streams fail clearly."""

import csv

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from compzoo import exports, models
from compzoo.codecs.learned import LearnedCodec
from compzoo.entropy.categorical import pmf_from_grid_logits
from compzoo.errors import BitstreamError, UsageError
from compzoo.models import cpm
from compzoo.train import groups
from compzoo.train.loop import train_and_evaluate

TINY = dict(features=8, blocks=1, channels=8, groups=4, levels=6, context_features=8)
SHAPES = [(1, 1), (7, 13), (33, 50), (64, 17), (16, 40)]


def _model(seed=0, **settings):
  return cpm.ContextModelAutoencoder(**{**TINY, **settings}, rngs=nnx.Rngs(seed))


def _coding(model):
  """The model's tables, prepared as a codec prepares them."""
  return model.prepare_coding(model.coding_tables())


def _stress(model, scale=6.0):
  """Large context-model weights, so activations and logits reach the clipping limits of the exact grid."""
  for layer in model.context.layers():
    layer.kernel[...] = layer.kernel[...] * scale
    layer.bias[...] = jnp.full_like(layer.bias[...], 0.3)
  return model


@pytest.fixture(scope="module", params=["context", "factorized"])
def codec(request, tmp_path_factory):
  config = ml_collections.ConfigDict(dict(model=dict(name="cpm", prior=request.param, **TINY),
                                          objective=dict(name="rate_distortion")))
  path = tmp_path_factory.mktemp(request.param)
  exports.write(path, config, models.build(config.model))
  return LearnedCodec.from_path(path, name=f"cpm-{request.param}")


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_decoding_gives_the_models_reconstruction_at_any_size(codec, shape, astronaut):
  image = np.ascontiguousarray(astronaut[100:100 + shape[0], 180:180 + shape[1]])
  decoded = codec.decompress(codec.compress(image))
  assert np.array_equal(decoded, codec.model.reconstruct(image))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_pass_and_wavefront_logits_are_bit_identical(seed):
  model = _stress(_model(seed))
  rng = np.random.default_rng(seed)
  volume = rng.integers(0, model.levels, (8, 5, 7)).astype(np.int32)
  coded = rng.random(volume.shape) < 0.7
  volume = np.where(coded, volume, 0)
  full = np.asarray(cpm._context_logits(model, volume[None], coded[None]))[0]
  seen = []
  flat = volume.reshape(-1)

  def read(logits):
    seen.append(logits)
    start = sum(len(s) for s in seen[:-1])
    return flat[order[start:start + len(logits)]]

  order = cpm._wavefront_plan(volume.shape).order
  order = order[coded.reshape(-1)[order]]
  decoded = cpm.run_wavefronts(model, coded, read)
  assert np.array_equal(decoded, volume)
  wavefront = np.concatenate(seen)
  assert np.array_equal(wavefront, full.reshape(-1, model.levels)[order])  # exact, not close
  assert np.abs(full).max() > 50 and np.all(full * 4096 == np.round(full * 4096))  # on the 2^-12 grid


def test_context_model_is_causal():
  """Changing one symbol changes the logits of later positions only, in (channel, row, column) order."""
  model = _stress(_model(3), 2.0)
  rng = np.random.default_rng(0)
  volume = rng.integers(0, model.levels, (6, 5, 5)).astype(np.int32)
  coded = np.ones(volume.shape, bool)
  before = np.asarray(cpm._context_logits(model, volume[None], coded[None]))[0]
  changed = volume.copy()
  changed[3, 2, 2] = (changed[3, 2, 2] + 3) % model.levels
  after = np.asarray(cpm._context_logits(model, changed[None], coded[None]))[0]
  differs = np.any(before != after, axis=-1)
  raster = np.arange(volume.size).reshape(volume.shape)
  assert not differs[raster <= raster[3, 2, 2]].any()
  assert differs[3, 2, 3] and differs[3, 3, 2] and differs[4, 2, 2]


def test_stream_matches_the_models_bits(astronaut):
  model = _model(1)
  image = np.ascontiguousarray(astronaut[80:144, 160:240])
  streams, _ = model.encode_image(image, _coding(model))
  output = model(image[None].astype(np.float32))
  bits = float(output.total_bits()[0])
  assert abs(8 * len(streams[0]) - bits) <= 0.01 * bits + 64
  reconstruction = np.clip(np.round(np.asarray(output.reconstruction[0])), 0, 255)
  assert np.abs(reconstruction - model.reconstruct(image)).max() <= 1  # training forward = coded model


def test_masked_symbols_cost_nothing(astronaut):
  """Importance forced to its minimum (one group of C/K channels) or maximum (all): the masked symbols are
  neither counted in the rate nor written to the stream."""
  image = np.ascontiguousarray(astronaut[80:144, 160:240])
  bits, streams = {}, {}
  for name, bias in (("min", -1e4), ("max", 1e4)):
    model = _model(2)
    model.encoder.down3.bias[...] = model.encoder.down3.bias[...].at[-1].set(bias)
    counts = model.quantize(model.analyze(image[None])).symbols["counts"]
    assert np.all(counts == (1 if name == "min" else model.groups))
    output = model(image[None].astype(np.float32))
    bits[name] = {k: float(v[0]) for k, v in output.bits.items()}
    streams[name], _ = model.encode_image(image, _coding(model))
    assert 8 * len(streams[name][0]) <= sum(bits[name].values()) + 64
    decoded, _ = model.decode_image(streams[name], image.shape, _coding(model))
    assert np.array_equal(decoded, model.reconstruct(image))
  assert bits["min"]["latent"] < 0.5 * bits["max"]["latent"]  # a quarter of the channels are coded
  assert len(streams["min"][0]) < 0.5 * len(streams["max"][0])


def test_importance_mask_follows_the_counts():
  model = _model()
  mask = model.mask_from_counts(np.array([[0, 1], [3, 4]]))
  assert mask.shape == (2, 2, 8)
  assert mask.sum(axis=-1).tolist() == [[0, 2], [6, 8]] and mask[0, 1, :2].all() and not mask[0, 1, 2:].any()


def test_gradients_reach_every_part():
  model = _model()
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)), jnp.float32)

  def loss(m):
    out = m(images)
    return out.bpp() + jnp.mean((out.reconstruction - images) ** 2) / 1e4 + out.entropy_model_loss

  grads = nnx.jit(nnx.grad(loss))(model)
  for part in ("encoder", "decoder", "centers", "importance", "context"):
    norm = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads[part]))
    assert norm > 0, part


def _tiny_config(workdir_prior="context", steps=60):
  from experiments.configs import cpm as cpm_config

  config = cpm_config.get_config("tiny-mid" if workdir_prior == "context" else "tiny-mid-factorized")
  config.data = dict(source="embedded", crop=48, batch_size=4)
  config.train.update(steps=steps, log_every=10, eval_every=steps, checkpoint_every=steps, eval_images=2)
  return config


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["context", "factorized"])
def test_loss_falls(prior, tmp_path):
  train_and_evaluate(_tiny_config(prior), tmp_path, progress=False)
  with open(tmp_path / "metrics.csv") as f:
    losses = [float(row["loss"]) for row in csv.DictReader(f)]
  assert losses[-1] < 0.85 * losses[0], losses
  # The exported model codes images.
  codec = LearnedCodec.from_path(tmp_path / "export")
  image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
  assert np.array_equal(codec.decompress(codec.compress(image)), codec.model.reconstruct(image))


@pytest.mark.slow
def test_warm_start_copies_weights_and_reports_what_it_could_not(tmp_path):
  config = _tiny_config(steps=2)
  train_and_evaluate(config, tmp_path / "source", progress=False)
  source = exports.read(tmp_path / "source" / "export").model
  target = models.build(config.model, seed=5)
  report = groups.warm_start(target, tmp_path / "source" / "export")
  assert not report.initialised and not report.mismatched
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(nnx.state(source, nnx.Param)),
                                                  jax.tree.leaves(nnx.state(target, nnx.Param))))
  other = _tiny_config(steps=2)
  other.model.channels = 4  # the encoder's last layer and the decoder's first change shape
  report = groups.warm_start(models.build(other.model), tmp_path / "source" / "export")
  assert "encoder.down3.kernel" in report.mismatched and "decoder.up2.kernel" in report.copied


def test_damaged_streams_fail_clearly(astronaut):
  model = _model(4)
  image = np.ascontiguousarray(astronaut[80:144, 160:240])
  tables = _coding(model)
  streams, check = model.encode_image(image, tables)
  with pytest.raises(BitstreamError):
    model.decode_image(streams * 2, image.shape, tables)
  assert model.min_stream_bits((4096, 4096, 3), tables) > 8 * len(streams[0])  # too short for that claim
  with pytest.raises(BitstreamError):
    model.decode_image([streams[0][:-1]], image.shape, tables)
  for damaged in (streams[0][:-8], bytes(len(streams[0])), streams[0][::-1]):
    try:
      _, got = model.decode_image([damaged], image.shape, tables)
    except BitstreamError:
      continue
    assert got != check  # the container's check turns this into a BitstreamError


def test_bad_settings_are_usage_errors():
  for settings in (dict(prior="hyper"), dict(channels=9, groups=4), dict(levels=12), dict(context_features=64)):
    with pytest.raises(UsageError):
      _model(**settings)
  with pytest.raises(UsageError, match="divisible by 8"):
    _model()(np.zeros((1, 12, 16, 3), np.float32))


def test_pmf_from_grid_logits_is_a_softmax():
  logits = np.array([[0.0, 1.0, -2.5, 0.0625], [3.0, 3.0, 3.0, 3.0]], np.float32)
  expected = jax.nn.softmax(logits, axis=-1)
  assert np.allclose(pmf_from_grid_logits(logits), expected, atol=1e-4)


def test_images_over_the_decoder_s_memory_limit_are_refused_both_ways(codec):
  assert codec.max_pixels == cpm.ContextModelAutoencoder.MAX_PIXELS == 1 << 24
  with pytest.raises(UsageError, match="over the limit"):
    codec.compress(np.zeros((4097, 4096, 3), np.uint8))
