import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from compzoo import cli, zoo


@pytest.fixture
def png_file(tmp_path, rng):
  path = tmp_path / "in.png"
  Image.fromarray(rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)).save(path)
  return path


def run(argv, capsys):
  code = cli.main(argv)
  out, err = capsys.readouterr()
  return code, out, err


def test_models_lists_every_entry_name_first(capsys):
  code, out, _ = run(["models"], capsys)
  assert code == 0
  assert [line.split("\t")[0] for line in out.splitlines()] == list(zoo.entries())


@pytest.mark.parametrize("model", ["png", "jpegxl-lossless", "jpeg:quality=90"])
def test_compress_info_decompress(model, png_file, tmp_path, capsys):
  packed, restored = tmp_path / "x.czoo", tmp_path / "out.png"
  assert run(["compress", "-m", model, str(png_file), str(packed)], capsys)[0] == 0
  code, out, _ = run(["info", str(packed)], capsys)
  assert code == 0 and "37x23" in out and zoo.make_codec(model).name in out
  assert run(["decompress", str(packed), str(restored)], capsys)[0] == 0
  original, decoded = np.asarray(Image.open(png_file)), np.asarray(Image.open(restored))
  assert decoded.shape == original.shape
  if zoo.make_codec(model).lossless:
    np.testing.assert_array_equal(decoded, original)


def _one_line(err):
  assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
  return err


@pytest.mark.parametrize("argv, code, message", [
    (["compress", "-m", "png", "missing.png", "out"], 2, "no such image file"),
    (["compress", "-m", "nope", "{png}", "{tmp}/o"], 2, "unknown codec"),
    (["compress", "-m", "jpeg:quality=500", "{png}", "{tmp}/o"], 2, "outside"),
    (["compress", "-m", "png", "{png}", "{tmp}/no/such/dir/o"], 2, "output folder does not exist"),
    (["decompress", "{garbage}", "{tmp}/o.png"], 1, "not a compzoo file"),
    (["decompress", "{truncated}", "{tmp}/o.png"], 1, "truncated"),
    (["info", "{garbage}"], 1, "not a compzoo file"),
    (["decompress", "{packed}", "{tmp}/o.jpg"], 2, "written as PNG"),
    (["compress", "-m", "png", "{rgba}", "{tmp}/o"], 2, "RGB only"),
    (["compress", "-m", "png", "{garbage}", "{tmp}/o"], 2, "cannot read image"),
    (["bench", "-m", "png", "--images", "{tmp}/none", "--out", "{tmp}/b"], 2, "no such image folder"),
    (["compress", "-m", "png", "--label-map", "{labels}", "{png}", "{tmp}/o"], 2, "takes no label_map"),
    (["compress", "-m", "png", "--label-map", "{png}", "{png}", "{tmp}/o"], 2, "8-bit grey"),
    (["decompress", "--max-pixels", "100", "{packed}", "{tmp}/o.png"], 1, "over the limit of 100"),
    (["decompress", "--max-pixels", "0", "{packed}", "{tmp}/o.png"], 2, "must be positive"),
])
def test_errors_are_one_line(argv, code, message, png_file, tmp_path, capsys):
  garbage = tmp_path / "garbage.bin"
  garbage.write_bytes(b"hello world, not an image")
  packed = tmp_path / "ok.czoo"
  cli.main(["compress", "-m", "png", str(png_file), str(packed)])
  truncated = tmp_path / "t.czoo"
  truncated.write_bytes(packed.read_bytes()[:-10])
  rgba = tmp_path / "rgba.png"
  Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(rgba)
  labels = tmp_path / "labels.png"
  Image.fromarray(np.zeros((23, 37), np.uint8)).save(labels)
  capsys.readouterr()
  names = dict(png=png_file, tmp=tmp_path, garbage=garbage, packed=packed, truncated=truncated, rgba=rgba,
               labels=labels)
  result = run([a.format(**names) for a in argv], capsys)
  assert result[0] == code
  assert message in _one_line(result[2])


def test_info_and_models_state_the_decode_guarantee(png_file, tmp_path, capsys):
  lines = {line.split("\t")[0]: line for line in run(["models"], capsys)[1].splitlines()}
  assert "decode: exact on any backend" in lines["cpm-mid"] and "tables ship inside the weights" in lines["bmshj2018-factorized"]
  assert "decode: same backend only" in lines["l3c"]
  packed = tmp_path / "x.czoo"
  assert run(["compress", "-m", "bmshj2018-factorized", str(png_file), str(packed)], capsys)[0] == 0
  assert "decode:   exact on any backend: symbols decode exactly (integer coding tables ship" in run(["info", str(packed)], capsys)[1]


def test_output_that_is_the_input_is_refused_and_the_input_kept(png_file, tmp_path, capsys):
  original = png_file.read_bytes()
  code, _, err = run(["compress", "-m", "png", "--force", str(png_file), str(png_file)], capsys)
  assert code == 2 and "is the input" in _one_line(err)
  link = tmp_path / "link.png"
  link.symlink_to(png_file)
  assert run(["compress", "-m", "png", "--force", str(png_file), str(link)], capsys)[0] == 2
  assert png_file.read_bytes() == original
  packed = tmp_path / "x.czoo"
  run(["compress", "-m", "png", str(png_file), str(packed)], capsys)
  assert run(["decompress", "--force", str(packed), str(packed)], capsys)[0] == 2


def test_existing_outputs_are_kept_unless_forced(png_file, tmp_path, capsys):
  packed, restored = tmp_path / "x.czoo", tmp_path / "out.png"
  for path in (packed, restored):
    path.write_bytes(b"precious")
  code, _, err = run(["compress", "-m", "png", str(png_file), str(packed)], capsys)
  assert code == 2 and "exists; use --force" in _one_line(err) and packed.read_bytes() == b"precious"
  assert run(["compress", "-m", "png", "-f", str(png_file), str(packed)], capsys)[0] == 0
  assert packed.read_bytes().startswith(b"CZOO")
  assert run(["decompress", str(packed), str(restored)], capsys)[0] == 2 and restored.read_bytes() == b"precious"
  assert run(["decompress", "--force", str(packed), str(restored)], capsys)[0] == 0
  assert np.array_equal(np.asarray(Image.open(restored)), np.asarray(Image.open(png_file)))


def test_failed_and_interrupted_runs_leave_no_partial_output(png_file, tmp_path, capsys, monkeypatch):
  import os
  packed, restored = tmp_path / "x.czoo", tmp_path / "out.png"
  run(["compress", "-m", "png", str(png_file), str(packed)], capsys)
  damaged = tmp_path / "damaged.czoo"
  damaged.write_bytes(packed.read_bytes()[:-3])
  assert run(["decompress", str(damaged), str(restored)], capsys)[0] == 1

  def full_disk(fd):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "fsync", full_disk)
  code, _, err = run(["compress", "-m", "png", str(png_file), str(tmp_path / "y.czoo")], capsys)
  assert code == 1 and "No space left" in _one_line(err)
  monkeypatch.undo()

  def interrupted(source, target):  # Ctrl-C between writing the data and renaming it into place
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "replace", interrupted)
  assert run(["decompress", str(packed), str(restored)], capsys)[0] == 130
  assert run(["compress", "-m", "png", str(png_file), str(tmp_path / "y.czoo")], capsys)[0] == 130
  assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.czoo", "in.png", "x.czoo"]


def test_compress_and_decompress_import_no_training_code(tmp_path):
  """Shipped models load from their exports alone: no trainer, orbax, data pipeline or TensorBoard.
  (optax is imported by Flax NNX itself, so it is allowed only if flax.nnx is what brought it.)"""
  script = f"""
import sys
from compzoo import cli
assert cli.main(["compress", "-m", "cpm-mid", {str(tmp_path / "in.png")!r}, {str(tmp_path / "x.czoo")!r}]) == 0
assert cli.main(["decompress", {str(tmp_path / "x.czoo")!r}, {str(tmp_path / "out.png")!r}]) == 0
heavy = ("compzoo.train", "compzoo.checkpoints", "compzoo.data.pipeline", "orbax", "grain", "tensorflow_datasets",
         "tensorboardX")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or any(m.startswith(h) for h in heavy)))
"""
  import skimage.data
  from compzoo.data import save_image
  save_image(tmp_path / "in.png", skimage.data.astronaut()[:40, :56])
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().splitlines()[-1] == "[]"


def test_debug_shows_traceback(capsys):
  code, _, err = run(["--debug", "compress", "-m", "png", "missing.png", "out"], capsys)
  assert code == 2 and "Traceback" in err


def test_bad_flags_exit_2(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["bench", "--no-such-flag"])
  assert exit_info.value.code == 2


def test_bench_writes_records_table_and_plots(tmp_path, rng, capsys):
  images = tmp_path / "images"
  images.mkdir()
  for i, shape in enumerate([(200, 190), (31, 17)]):
    Image.fromarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)).save(images / f"im{i}.png")
  out = tmp_path / "bench"
  code, stdout, _ = run(["bench", "-m", "png,jpeg:quality=50,jpeg:quality=90", "--images", str(images),
                         "--out", str(out), "--quiet"], capsys)
  assert code == 0 and "| png |" in stdout
  records = json.loads((out / "results.json").read_text())
  assert len(records) == 6
  keys = {"codec", "image", "bytes", "bpp", "bpsp", "psnr", "ms_ssim", "colour_psnr", "exact", "encode_s",
          "decode_s", "parts"}
  assert all(set(r) == keys for r in records)
  png = [r for r in records if r["codec"] == "png"]
  assert all(r["exact"] and r["psnr"] is None and r["colour_psnr"] is None for r in png)
  lossy = [r for r in records if r["codec"].startswith("jpeg")]
  assert all(not r["exact"] and r["colour_psnr"] > r["psnr"] > 0 for r in lossy)  # noise images: texture lost
  assert "colour PSNR (dB)" in stdout
  assert [r["ms_ssim"] is None for r in lossy] == [False, True, False, True]  # 31x17 is too small
  assert (out / "summary.md").exists() and (out / "rd_psnr.png").exists()
  assert not (out / "rd_ms_ssim.png").exists()  # no codec has MS-SSIM on every image


def test_bench_plots_ms_ssim_when_every_image_has_it(tmp_path, astronaut, capsys, monkeypatch):
  from compzoo.data import images

  monkeypatch.setattr(images, "embedded_images", lambda: {"astronaut": astronaut})
  assert run(["bench", "-m", "jpeg:quality=30,jpeg:quality=80", "--out", str(tmp_path), "--quiet"], capsys)[0] == 0
  assert (tmp_path / "rd_ms_ssim.png").exists()


def test_bench_sweep_expands_families(tmp_path, capsys, monkeypatch):
  from compzoo.data import images

  tiny = {"a": np.full((8, 8, 3), 100, np.uint8)}
  monkeypatch.setattr(images, "embedded_images", lambda: tiny)
  code, _, _ = run(["bench", "-m", "jpeg,png", "--sweep", "--out", str(tmp_path), "--quiet"], capsys)
  assert code == 0
  codecs = [r["codec"] for r in json.loads((tmp_path / "results.json").read_text())]
  assert codecs == zoo.sweep_names(zoo.get("jpeg")) + ["png"]


def test_bench_grid_shows_the_decoded_pictures_beside_the_original(tmp_path, astronaut, capsys, monkeypatch):
  from compzoo.data import images

  photos = {"a": astronaut[:100, :120], "b": astronaut[200:300, 200:300], "c": astronaut[:50, :50]}
  monkeypatch.setattr(images, "embedded_images", lambda: photos)
  code, _, stderr = run(["bench", "-m", "png,jpeg:quality=5", "--grid", "2", "--grid-crop", "64",
                         "--out", str(tmp_path), "--quiet"], capsys)
  assert code == 0 and "grid.png" in stderr
  grid = np.asarray(Image.open(tmp_path / "grid.png"))
  assert grid.shape[0] == 2 * (64 + 38) + 4 and grid.shape[1] == 3 * 68 + 4  # 2 images x (original, png, jpeg)
  tile = lambda row, column: grid[4 + row * 102 + 34:4 + row * 102 + 98, 4 + column * 68:4 + column * 68 + 64]
  np.testing.assert_array_equal(tile(1, 0), photos["b"][18:82, 18:82])  # the original's central crop
  np.testing.assert_array_equal(tile(1, 1), photos["b"][18:82, 18:82])  # png decodes exactly
  assert np.abs(tile(1, 2).astype(int) - photos["b"][18:82, 18:82]).mean() > 1  # jpeg at quality 5 does not
  assert tile(0, 2)[:2].std() > 0 and (grid[4:30, 4:60] < 128).any()  # a picture, and a label above it
  assert run(["bench", "-m", "png", "--grid", "-1", "--out", str(tmp_path)], capsys)[0] == 2
  assert run(["bench", "-m", "png", "--grid", "c,a", "--out", str(tmp_path / "named"), "--quiet"], capsys)[0] == 0
  named = np.asarray(Image.open(tmp_path / "named" / "grid.png"))
  assert named.shape[:2] == (2 * (100 + 38) + 4, 2 * (120 + 4) + 4)  # rows c and a; cells fit the largest (a: 100x120)
  code, _, stderr = run(["bench", "-m", "png", "--grid", "nope.png", "--out", str(tmp_path)], capsys)
  assert code == 2 and "nope.png" in stderr


def test_bench_writes_one_self_contained_html_report(tmp_path, astronaut, capsys, monkeypatch):
  import base64
  import io
  import re
  from compzoo.data import images

  monkeypatch.setattr(images, "embedded_images", lambda: {"a": astronaut[:64, :64], "b": astronaut[64:128, :64]})
  code, _, stderr = run(["bench", "-m", "png,jpeg:quality=5,jpeg:quality=50", "--grid", "1", "--grid-crop", "32",
                         "--out", str(tmp_path), "--quiet"], capsys)
  assert code == 0 and "report.html" in stderr
  page = (tmp_path / "report.html").read_text()
  assert "command: compzoo bench -m png,jpeg:quality=5,jpeg:quality=50" in page
  summary = json.loads((tmp_path / "results.json").read_text())
  mean_bpp = np.mean([r["bpp"] for r in summary if r["codec"] == "jpeg:quality=5"])
  assert f"<td>jpeg:quality=5</td><td>2</td><td>{mean_bpp:.4f}</td>" in page  # the numbers of summary.md
  embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
  assert "src=\"http" not in page and len(embedded) == 2  # the PSNR plot (no MS-SSIM at 64 px) and the grid
  pictures = [Image.open(io.BytesIO(base64.b64decode(data))) for data in embedded]
  np.testing.assert_array_equal(np.asarray(pictures[-1]), np.asarray(Image.open(tmp_path / "grid.png")))
  assert run(["bench", "-m", "png", "--limit", "1", "--out", str(tmp_path / "one"), "--quiet"], capsys)[0] == 0
  assert [r["image"] for r in json.loads((tmp_path / "one" / "results.json").read_text())] == ["a"]


def test_bench_codes_label_maps_for_the_codecs_that_take_them(tmp_path, astronaut, capsys):
  from compzoo import exports, models
  from experiments.configs import gc
  config = gc.get_config("tiny-sc")
  export = exports.write(tmp_path / "sc", config, models.build(config.model))
  (tmp_path / "images").mkdir()
  (tmp_path / "labels").mkdir()
  for name, (top, height, width) in {"a.png": (0, 40, 56), "b.png": (100, 40, 56)}.items():  # one compile
    Image.fromarray(astronaut[top:top + height, :width]).save(tmp_path / "images" / name)
    labels = (np.indices((height, width))[0] * 12 // height).astype(np.uint8)  # bands of every class
    Image.fromarray(labels).save(tmp_path / "labels" / name)
  base = ["bench", "-m", "learned,png", "--weights", str(export), "--images", str(tmp_path / "images"), "--quiet"]
  code, _, stderr = run(base + ["--out", str(tmp_path / "none")], capsys)
  assert code == 2 and "--label-maps" in stderr
  code, _, stderr = run(base + ["--label-maps", str(tmp_path / "labels"), "--out", str(tmp_path / "out")], capsys)
  assert code == 0, stderr
  rows = {(r["codec"], r["image"]): r for r in json.loads((tmp_path / "out" / "results.json").read_text())}
  assert rows[("learned", "a.png")]["bpp"] > 0 and not rows[("learned", "a.png")]["exact"]
  code, _, stderr = run(base + ["--label-maps", str(tmp_path), "--out", str(tmp_path / "bad")], capsys)
  assert code == 2 and "no label map" in stderr


def test_bench_crop_codes_central_crops(tmp_path, capsys, monkeypatch):
  from compzoo.data import images

  monkeypatch.setattr(images, "embedded_images", lambda: {"a": np.zeros((40, 30, 3), np.uint8)})
  code, _, _ = run(["bench", "-m", "png", "--crop", "16", "--out", str(tmp_path), "--quiet"], capsys)
  assert code == 0
  record, = json.loads((tmp_path / "results.json").read_text())
  assert record["bpp"] == pytest.approx(8 * record["bytes"] / (16 * 16))
  assert run(["bench", "-m", "png", "--crop", "-1", "--out", str(tmp_path)], capsys)[0] == 2


def test_python_dash_m_entry_point():
  result = subprocess.run([sys.executable, "-m", "compzoo", "models"], capture_output=True, text=True, timeout=120)
  assert result.returncode == 0 and result.stdout.startswith("avif")


def test_parts_say_where_a_learned_files_bits_go(tmp_path, astronaut, capsys):
  """info --parts splits an L3C stream by scale (and a classic file by stream); bench tabulates the same."""
  from compzoo import exports, models
  from experiments.configs import l3c
  config = l3c.get_config("tiny")
  export = exports.write(tmp_path / "l3c", config, models.build(config.model))
  (tmp_path / "images").mkdir()
  Image.fromarray(astronaut[:24, :40]).save(tmp_path / "images" / "a.png")
  code, _, err = run(["bench", "-m", "learned,png", "--weights", str(export), "--images", str(tmp_path / "images"),
                      "--out", str(tmp_path / "out"), "--quiet"], capsys)
  assert code == 0, err
  learned, png = json.loads((tmp_path / "out" / "results.json").read_text())
  assert list(learned["parts"]) == ["z3", "z2", "z1", "x"] and png["parts"] is None
  assert sum(learned["parts"].values()) == pytest.approx(learned["bpsp"], abs=0.2)
  assert "| learned | x |" in (tmp_path / "out" / "summary.md").read_text()
  packed = tmp_path / "a.czoo"
  assert run(["compress", "-m", "learned", "--weights", str(export), str(tmp_path / "images" / "a.png"),
              str(packed)], capsys)[0] == 0
  code, out, _ = run(["info", "--parts", "--weights", str(export), str(packed)], capsys)
  assert code == 0 and [line.split(":")[0].strip() for line in out.splitlines()[-4:]] == ["z3", "z2", "z1", "x"]
  assert run(["compress", "-m", "png", str(tmp_path / "images" / "a.png"), str(tmp_path / "p.czoo")], capsys)[0] == 0
  assert run(["info", "--parts", str(tmp_path / "p.czoo")], capsys)[1].splitlines()[-1].startswith("  stream 0:")
