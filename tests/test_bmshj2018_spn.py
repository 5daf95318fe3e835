"""bmshj2018-factorized-spn (compzoo/models/bmshj2018_spn.py): the sub-pixel form of a transposed convolution, the
teacher warm start, the decoder's operation counts, and the shipped entry: same symbols as its source point, files
that round-trip, a decoder within reach of the teacher's quality at a fraction of its multiplications."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from flax import nnx

from compzoo import bitstream, exports, metrics, zoo
from compzoo.codecs import learned
from compzoo.errors import CompzooError, UsageError
from compzoo.models import bmshj2018, bmshj2018_spn
from compzoo.nn import depth_to_space, sumprod

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kernel", [5, 3])
def test_a_transposed_convolution_is_exactly_a_sub_pixel_one(kernel):
  deconv = nnx.ConvTranspose(4, 3, (kernel, kernel), strides=2, rngs=nnx.Rngs(0))
  deconv.bias[...] = jnp.arange(3.0)
  sub, bias = bmshj2018_spn.subpixel_kernel(deconv)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 7, 4))  # the borders included
  out = jax.lax.conv_general_dilated(x, sub, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
  np.testing.assert_allclose(depth_to_space(out, 2), deconv(x), rtol=1e-5, atol=1e-5)
  for refused in (nnx.ConvTranspose(4, 3, (5, 5), strides=1, rngs=nnx.Rngs(0)),
                  nnx.ConvTranspose(4, 3, (5, 5), strides=2, padding="VALID", rngs=nnx.Rngs(0))):
    with pytest.raises(UsageError, match="stride-2 'SAME'"):
      bmshj2018_spn.subpixel_kernel(refused)


@pytest.fixture(scope="module")
def small_teacher():
  return bmshj2018.build(8, 6, stages=2, rngs=nnx.Rngs(3))


def test_the_warm_start_keeps_the_encoder_and_approaches_the_teacher_with_terms(small_teacher):
  x = jax.random.uniform(jax.random.PRNGKey(2), (1, 16, 24, 3)) * 255
  y = jnp.round(small_teacher.analyze(x))
  target = small_teacher.synthesize(y)
  errors = []
  for terms in (1, 3, 8):
    model = bmshj2018_spn.load_teacher(bmshj2018_spn.build(8, 6, stages=2, terms=terms, rngs=nnx.Rngs(0)),
                                       small_teacher, terms)
    np.testing.assert_array_equal(model.quantize(model.analyze(x)).symbols["latent"], y.astype(jnp.int32))
    errors.append(float(jnp.sqrt(jnp.mean(jnp.square(model.synthesize(y) - target)))))
  assert errors[0] > errors[1] > errors[2]


def test_synthesis_operation_counts(small_teacher):
  teacher = bmshj2018_spn.synthesis_ops(small_teacher.synthesis, 3, 5)
  expected = (sumprod.transposed_conv_ops(3, 5, 5, 2, 6, 8) + sumprod.gdn_ops(6, 10, 8)
              + sumprod.transposed_conv_ops(6, 10, 5, 2, 8, 3))
  assert teacher == expected
  model = bmshj2018_spn.build(8, 6, stages=2, terms=2, rngs=nnx.Rngs(0))
  spn = bmshj2018_spn.synthesis_ops(model.synthesis, 3, 5)
  # ã's products: terms × 4·C_out per coarse position, and the IGDN's as they were.
  assert spn.multiplications == 3 * 5 * 2 * 4 * 8 + 6 * 10 * 2 * 4 * 3 + sumprod.gdn_ops(6, 10, 8).multiplications


# ------------------------------------------------------------------------------------------ the shipped entry

@pytest.fixture(scope="module", params=[1, 2], ids=["q1", "q2"])
def codecs(request):
  """The entry at one quality and the bmshj2018-factorized point it derives from."""
  quality = request.param
  return (zoo.make_codec(f"bmshj2018-factorized-spn:quality={quality}"),
          zoo.make_codec(f"bmshj2018-factorized:quality={quality}"))


def _photo(height, width):
  return np.ascontiguousarray(skimage.data.astronaut()[60:60 + height, 150:150 + width])


@pytest.mark.parametrize("shape", [(37, 53), (64, 48), (17, 90)])
def test_files_carry_the_source_points_symbols_and_round_trip(codecs, shape):
  spn, source = codecs
  image = _photo(*shape)
  data = spn.compress(image)
  assert bitstream.unpack(data).streams == bitstream.unpack(source.compress(image)).streams
  decoded = spn.decompress(data)
  assert decoded.shape == image.shape and decoded.dtype == np.uint8
  np.testing.assert_array_equal(spn.decompress(data), decoded)


def test_the_shipped_decoder_is_near_the_teacher_at_a_fraction_of_its_multiplications(codecs):
  spn, source = codecs
  image = _photo(256, 256)
  ours, theirs = (metrics.psnr(image, codec.decompress(codec.compress(image))) for codec in (spn, source))
  assert ours > theirs - 1.0, (ours, theirs)
  point = spn.name.rsplit("=", 1)[1]
  student = exports.read(learned.shipped("bmshj2018-factorized-spn", f"q{point}")).model
  teacher = exports.read(learned.shipped("bmshj2018-factorized", f"q{point}")).model
  stages = [layer for _, layer in nnx.iter_modules(student) if isinstance(layer, sumprod.SumProdConv)]
  assert len(stages) == 4 and all(layer.mode == "frozen" for layer in stages)
  ratio = (bmshj2018_spn.synthesis_ops(student.synthesis, 32, 48).multiplications
           / bmshj2018_spn.synthesis_ops(teacher.synthesis, 32, 48).multiplications)
  assert ratio <= 0.25


def test_a_file_of_the_source_point_is_refused_by_name(codecs):
  spn, source = codecs
  with pytest.raises(CompzooError) as error:
    spn.decompress(source.compress(_photo(32, 32)))
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_the_decoder_experiment_trains_and_writes_its_table(tmp_path):
  run = subprocess.run([sys.executable, "-m", "experiments.strassen_decoder", f"--out={tmp_path}", "--terms=1",
                        "--plain_widths=4", "--train_images=4", "--crops_per_image=2", "--crop=64", "--ternary_steps=2",
                        "--frozen_steps=150", "--plain_steps=30", "--limit=1", "--learning_rate=2e-3",
                        f"--chosen={tmp_path / 'shipped'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stderr[-2000:]
  results = json.loads((tmp_path / "results.json").read_text())
  rows = {row["decoder"]: row for row in results["rows"]}
  assert {"teacher", "spn-t1 (start)", "spn-t1", "plain-w4"} <= set(rows)
  frozen = results["losses"]["spn-t1/frozen"]
  assert frozen[-1] < frozen[0]  # the loss falls
  assert rows["spn-t1"]["multiplications"] < 0.25 * rows["teacher"]["multiplications"]
  assert exports.is_export(tmp_path / "spn-t1") and exports.is_export(tmp_path / "shipped" / "q2" / "export")
  assert "| teacher |" in (tmp_path / "results.md").read_text()
  for flag in ("--crop=40", "--crop=336", "--terms=a", "--batch=0"):
    bad = subprocess.run([sys.executable, "-m", "experiments.strassen_decoder", flag, f"--out={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    said = flag.split("=")[0]
    assert bad.returncode != 0 and said in bad.stderr and "Traceback" not in bad.stderr, (flag, bad.stderr[-500:])
