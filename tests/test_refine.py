"""The recurrent refinement decoder (compzoo/models/refine.py): its file is JPEG's, byte for byte; its
wavefront decoder runs exactly the recurrence that training unrolls in raster order; it trains (the loss
falls below JPEG's); odd sizes round-trip; bad streams fail with BitstreamError."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from compzoo import bitstream, jpeg, models, zoo
from compzoo.codecs.learned import LearnedCodec
from compzoo.errors import BitstreamError, UsageError
from compzoo.models.refine import patch_grid, unpatch
from compzoo.nn.recurrence import gather_slots, sparse_attention
from compzoo.train.registry import make_objective
from train_helpers import run_steps

TINY = dict(name="refine", features=4, width=3, stages=3, memory_stride=3, memory_topk=2)


def _perturbed(config=TINY, scale=0.1):
  """A tiny decoder whose zero-initialised correction is perturbed, so it changes the pixels."""
  model = models.build(config)
  params = nnx.state(model, nnx.Param)
  keys = iter(jax.random.split(jax.random.PRNGKey(3), len(jax.tree.leaves(params))))
  nnx.update(model, jax.tree.map(lambda p: p + scale * jax.random.normal(next(keys), p.shape), params))
  return model


def _codec(model, quality=30):
  return LearnedCodec(f"jpeg-refine:quality={quality}:rule=test", model, b"\x07" * 16, options={"quality": quality})


def test_an_untrained_decoder_returns_libjpeg_s_pixels(astronaut):
  decoded, quality = jpeg.degrade(astronaut[:40, :56], 20)
  refined = models.build(TINY).refine(decoded, quality)
  np.testing.assert_array_equal(refined, decoded)  # the correction starts at zero


def test_wavefront_decoding_runs_the_raster_walk_of_training(astronaut):
  model = _perturbed()
  decoded, quality = jpeg.degrade(astronaut[100:124, 200:240], 15)  # 3 x 5 patches, 3 sweeps, a memory
  batch = {"image": astronaut[None, 100:124, 200:240], "jpeg": decoded[None], "jpeg_quality": quality[None]}
  unroll = model.unroll(batch)
  slots = jnp.zeros((unroll.slots, unroll.width))
  entries = unroll.memory.entries(unroll.steps)
  memory, outputs = jnp.zeros((entries, unroll.width)), []
  for t in range(unroll.steps):  # one step at a time, in raster order, sweep after sweep
    inputs = jax.tree.map(lambda x: x[:, t], unroll.inputs)
    kept, features = model.update(gather_slots(slots, unroll.reads[t])[None], inputs)
    state = kept[0] + sparse_attention(kept[0], memory, unroll.memory.visible(t, entries), unroll.memory.topk)
    outputs.append(model.readout(state[None], features, inputs)[0])
    slots = slots.at[unroll.writes[t]].set(state)
    is_kept, entry = unroll.memory.kept(t)
    memory = memory.at[entry].set(kept[0]) if is_kept else memory
  raster = unpatch(jnp.stack(outputs[-unroll.slots:]), 3, 5)
  wavefront = model.refine(decoded, quality)
  np.testing.assert_allclose(wavefront, np.asarray(raster), atol=1e-3)
  assert np.abs(wavefront - decoded).max() > 1  # the check is not vacuous


def test_patch_grid_reads_own_above_left_below_right():
  reads, where = patch_grid(2, 3)
  assert reads[4].tolist() == [4, 1, 3, -1, 5]  # row 1, column 1
  assert reads[0].tolist() == [0, -1, -1, 3, 1]
  assert where[5].tolist() == [1, 2]


def test_unroll_is_k_sweeps_of_the_crop_s_patches(astronaut):
  model = models.build(TINY)
  decoded, quality = jpeg.degrade(astronaut[:16, :24], 40)
  unroll = model.unroll({"image": astronaut[None, :16, :24], "jpeg": decoded[None], "jpeg_quality": quality[None]})
  assert unroll.steps == 3 * 6 and unroll.slots == 6
  assert unroll.inputs["window"].shape == (1, 18, 16, 16, 3) and unroll.targets.shape == (1, 18, 8, 8, 3)
  assert unroll.stages.tolist() == [0] * 6 + [1] * 6 + [2] * 6
  np.testing.assert_array_equal(unroll.baseline[0, 7], decoded[:8, 8:16])  # sweep 1, patch 1
  with pytest.raises(UsageError, match="multiple of 8"):
    model.unroll({"image": astronaut[None, :12, :16], "jpeg": astronaut[None, :12, :16],
                  "jpeg_quality": quality[None]})


@pytest.mark.parametrize("credit", ["sab:6", pytest.param("bptt", marks=pytest.mark.slow),
                                    pytest.param("tbptt:6", marks=pytest.mark.slow),
                                    pytest.param("uoro", marks=pytest.mark.slow),
                                    pytest.param("rtrl", marks=pytest.mark.slow)])
def test_training_brings_the_loss_below_jpeg_s(astronaut, credit):
  """Every rule's tiny run: the same 80 steps on the same batches improve on libjpeg's pixels."""
  crops = [astronaut[r:r + 32, c:c + 32] for r in range(96, 320, 32) for c in range(160, 352, 32)]

  def batch(picked):
    copies = [jpeg.degrade(crops[j], 10) for j in picked]
    return {"image": np.stack([crops[j] for j in picked]), "jpeg": np.stack([c[0] for c in copies]),
            "jpeg_quality": np.stack([c[1] for c in copies])}

  rng = np.random.default_rng(0)
  objective = make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit=credit)))
  model = models.build(dict(TINY, features=8, width=4))
  measured = batch(range(0, len(crops), 5))
  before, _ = objective.evaluate(model, measured)
  assert float(before["mse/last_stage"]) == pytest.approx(float(before["mse/baseline"]), rel=1e-6)  # JPEG's own
  optimizer = dict(name="adam", learning_rate=3e-3, schedule="constant", warmup=0, clip=1.0)
  model, history = run_steps(model, objective, optimizer, lambda i: batch(rng.choice(len(crops), 4, False)), 80)
  assert np.isfinite([float(h["loss"]) for h in history]).all()
  after, _ = objective.evaluate(model, measured)
  assert float(after["psnr_gain_db"]) > 0.1  # about 0.2 dB after 80 steps
  assert float(after["mse/last_stage"]) < float(before["mse/last_stage"])


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (17, 9), (40, 33)])
def test_files_hold_jpeg_s_bytes_and_odd_sizes_round_trip(astronaut, shape):
  image = np.ascontiguousarray(astronaut[50:50 + shape[0], 60:60 + shape[1]])
  codec = _codec(_perturbed())
  data = codec.compress(image)
  assert bitstream.unpack(data).streams == bitstream.unpack(zoo.make_codec("jpeg:quality=30").compress(image)).streams
  first, second = codec.decompress(data), codec.decompress(data)
  assert first.shape == image.shape and first.dtype == np.uint8
  np.testing.assert_array_equal(first, second)


def test_decoding_refines_what_libjpeg_decoded(astronaut):
  image = np.ascontiguousarray(astronaut[:48, :64])
  codec = _codec(_perturbed(), quality=20)
  refined = codec.decompress(codec.compress(image))
  plain = jpeg.decode(jpeg.encode(image, 20))
  assert np.abs(refined.astype(int) - plain).max() > 0  # the network ran


def test_bad_streams_are_bitstream_errors(astronaut):
  image = np.ascontiguousarray(astronaut[:24, :32])
  codec = _codec(models.build(TINY))
  container = bitstream.unpack(codec.compress(image))
  rewrap = lambda streams, shape=image.shape: bitstream.pack(bitstream.Container(
      container.codec, shape, tuple(streams), container.weights_id, container.content_check))
  other = jpeg.encode(np.ascontiguousarray(astronaut[:16, :32]), 30)  # a valid JPEG of another size
  with pytest.raises(BitstreamError, match="JPEG stream inside declares 32x16 pixels, the file claims 32x24"):
    codec.decompress(rewrap([other]))
  with pytest.raises(BitstreamError, match="not a JPEG|cannot decode"):
    codec.decompress(rewrap([b"\xff\xd8 not really a jpeg" * 8]))
  with pytest.raises(BitstreamError, match="jpeg-refine files hold 1 stream"):
    codec.decompress(rewrap([container.streams[0], b"x"]))
  with pytest.raises(BitstreamError):
    codec.decompress(rewrap([container.streams[0][: len(container.streams[0]) // 2]]))


def test_quality_features_grow_with_coarser_quantization(astronaut):
  features = [jpeg.degrade(astronaut[:64, :64], q)[1] for q in (90, 50, 20, 5)]
  assert all(np.all(a < b) for a, b in zip(features, features[1:]))
  with pytest.raises(BitstreamError, match="not a JPEG"):
    jpeg.quantization_tables(b"GIF89a")
