"""The mean-scale hyperprior (compzoo/models/mbt2018.py): it trains (the loss falls), its files decode to
the model's own reconstruction on odd shapes, their bytes match its bits, the latents of an image and of
its file agree, and damaged stream lists fail in one line. One small model per module."""

import jax
import numpy as np
import pytest

from compzoo import bitstream, models
from compzoo.codecs.learned import LearnedCodec
from compzoo.errors import BitstreamError
from train_helpers import run_steps

CONFIG = dict(name="mbt2018_mean", channels=8, latent=8)


@pytest.fixture(scope="module")
def trained():
  images = np.stack([np.asarray(img[:64, :64], np.float32) for img in _photos()])
  model = models.build(CONFIG)
  model, history = run_steps(model, _objective(), dict(name="adam", learning_rate=3e-3),
                             lambda i: {"image": images[(2 * i) % 4:(2 * i) % 4 + 2]}, 60)
  return model, history


@pytest.fixture(scope="module")
def codec(trained):
  from compzoo import exports

  model = trained[0]
  export = exports.from_model({"model": CONFIG}, model)
  return LearnedCodec("mbt2018-mean:test", model, export.weights_id, export.tables)


def _photos():
  import skimage.data

  return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]


def _objective():
  from compzoo.train.objectives import RateDistortion

  return RateDistortion(0.02, "mse")


def test_the_loss_falls(trained):
  _, history = trained
  assert np.mean([h["loss"] for h in history[-10:]]) < 0.7 * np.mean([h["loss"] for h in history[:5]])


@pytest.mark.parametrize("shape", [(16, 16), (37, 53), (70, 33)])
def test_files_decode_to_the_models_own_reconstruction(codec, shape):
  image = np.ascontiguousarray(_photos()[1][:shape[0], :shape[1]])
  data = codec.compress(image)
  np.testing.assert_array_equal(codec.decompress(data), codec.model.reconstruct(image))
  assert codec.latents(image).shape == codec.latents(data).shape
  np.testing.assert_allclose(codec.latents(image), codec.latents(data), atol=1e-5)


def test_bytes_match_the_models_bits(codec):
  image = np.ascontiguousarray(_photos()[0][:128, :128])
  output = codec.model(jax.numpy.asarray(image, np.float32)[None])
  bits = float(output.total_bits()[0])
  payload = sum(len(s) for s in bitstream.unpack(codec.compress(image)).streams)
  assert 8 * payload < 1.05 * bits + 200, (8 * payload, bits)
  assert 8 * payload > 0.9 * bits - 200


def test_a_file_with_a_stream_missing_fails_in_one_line(codec):
  image = np.ascontiguousarray(_photos()[0][:32, :32])
  streams, _ = codec.encode_streams(image)
  with pytest.raises(BitstreamError, match="mbt2018 files hold 2 streams"):
    codec.decode_streams(streams[:1], image.shape)
