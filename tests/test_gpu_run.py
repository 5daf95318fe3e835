"""The call a lent GPU runs (issue #31) cannot rot between loans: the whole command runs here, tiny, on a
tiny bundle; its dry run passes; the bundle's pieces (set-aside and restore, the cut-down wheel, the
stand-in weights) do what they say."""

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compzoo import exports
from compzoo.codecs import learned
from experiments import gpu_bundle, gpu_checks
from experiments.gpu_run import KODAK_IMAGE, MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[1]


def _tiny_bundle(root: Path, photo: np.ndarray) -> Path:
  for name, count in (("lossless-photos/train", 3), ("camvid/train", 2)):
    folder = root / "data" / name
    folder.mkdir(parents=True)
    for i in range(count):
      Image.fromarray(np.roll(photo, 97 * i, axis=1)[:160, :200]).save(folder / f"{i}.webp", lossless=True)
  (root / "data" / KODAK_IMAGE).parent.mkdir()
  Image.fromarray(photo[:64, :96]).save(root / "data" / KODAK_IMAGE)
  (root / "manifest.json").write_text(json.dumps({"wheels": [], "summary": "a test's"}))
  return root


def _app(*args, timeout=600):
  return subprocess.run([sys.executable, "-m", "experiments.gpu_run", *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


@pytest.mark.slow
def test_the_call_runs_tiny_here_and_returns_what_the_device_can_carry(tmp_path, astronaut):
  out = tmp_path / "out"
  done = _app("--size=tiny", f"--bundle={_tiny_bundle(tmp_path / 'bundle', astronaut)}", f"--out={out}",
              "--budget_s=100", "--reserve_s=60", "--slice_overhead_s=2", "--min_slice_s=5", "--queue=cpm-mid",
              "--families=bmshj2018_factorized",
              "--codecs=cpm-mid", "--step_processes=1")
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.startswith("devices: ") and "\nbundle: " in done.stdout
  files = sorted(out.iterdir())
  assert [f.name for f in files] == ["exports-1.tar", "metrics.tar", "report.json"]
  assert all(f.stat().st_size <= MAX_FILE_BYTES for f in files)
  report = json.loads((out / "report.json").read_text())
  trained, = report["queue"]
  assert trained["steps"] > 10 and trained["last_loss"] < trained["first_loss"], trained
  steps, = report["checks"]["steps-0"]["steps"]
  assert steps["finite"] and len(steps["losses"]) == 3 and "'data'" in steps["sharding"]
  codecs = report["checks"]["codecs"]
  assert codecs["weights"] == {"cpm-mid": "shipped"}
  for direction in ("here_to_cpu", "here_to_here", "cpu_to_here"):
    row = codecs["cross"][direction]["cpm-mid"]
    assert row["outcome"] == "exact" and row["as_stated"], (direction, row)
  assert codecs["times"]["cpm-mid"]["pixels"] == 64 * 96
  with tarfile.open(out / "exports-1.tar") as tar:
    tar.extractall(tmp_path / "exports", filter="data")
  assert exports.read(tmp_path / "exports" / "cpm-mid").weights_id.hex() == trained["weights_id"]


@pytest.mark.slow
def test_the_dry_run_checks_the_bundle_and_says_what_travels(tmp_path, astronaut):
  done = _app("--dry_run", f"--bundle={_tiny_bundle(tmp_path / 'bundle', astronaut)}")
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.strip().splitlines()
  assert lines[-2] == f"bundle: {(tmp_path / 'bundle').resolve()}" and lines[-1].startswith("travels: "), lines[-3:]
  assert "gc:gpu-sc traces its step" in done.stdout and "cpm-mid: 3 records of lossless-photos" in done.stdout
  (tmp_path / "bundle" / "data" / KODAK_IMAGE).unlink()
  broken = _app("--dry_run", f"--bundle={tmp_path / 'bundle'}", timeout=120)
  assert broken.returncode == 1 and broken.stderr.strip().splitlines()[-1].startswith("error: "), broken.stderr[-2000:]


def test_set_aside_files_neither_travel_nor_leave_and_restore_makes_git_clean(tmp_path, monkeypatch):
  repo = tmp_path / "repo"
  files = ["compzoo/weights/kept/config.json", "compzoo/weights/kept/params.msgpack",
           "compzoo/weights/left/config.json", "compzoo/weights/left/params.msgpack", "docs/grid.png", "README.md"]
  for name in files:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_bytes(name.encode())
  env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
  for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
    subprocess.run(["git", *command], cwd=repo, check=True, env=env)
  monkeypatch.chdir(repo)
  monkeypatch.setattr(learned, "SHIPPED_WEIGHTS", repo / "compzoo" / "weights")
  aside = gpu_bundle.set_aside({Path("kept")})
  assert sorted(aside) == ["compzoo/weights/left/params.msgpack", "docs/grid.png"]
  assert sorted(map(str, gpu_bundle.travelling_files())) == sorted(set(files) - set(aside))
  assert all((repo / name).is_file() for name in files)
  assert sorted(gpu_bundle.restore()) == sorted(aside)
  assert gpu_bundle.git("status", "--porcelain") == ""
  assert gpu_bundle.restore() == []


def test_a_cut_down_wheel_keeps_only_what_it_is_told_and_lists_it(tmp_path):
  whole = tmp_path / "pkg-1.0-py3-none-any.whl"
  with zipfile.ZipFile(whole, "w") as z:
    for name in ("pkg/__init__.py", "pkg/_jpeg.so", "pkg/_tiff.so", "pkg.libs/libjpeg.so", "pkg.libs/libtiff.so",
                 "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD"):
      z.writestr(name, name)
  gpu_bundle.slim_wheel(whole, tmp_path / "slim.whl", ("pkg/__init__", "pkg/_jpeg", "pkg.libs/libjpeg", ".dist-info/"))
  with zipfile.ZipFile(tmp_path / "slim.whl") as z:
    names = sorted(z.namelist())
    record = z.read("pkg-1.0.dist-info/RECORD").decode().splitlines()
  assert names == ["pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD", "pkg.libs/libjpeg.so", "pkg/__init__.py",
                   "pkg/_jpeg.so"]
  assert sorted(line.split(",")[0] for line in record) == names


def test_a_refusal_keeps_a_codec_s_word_only_across_backends_and_only_if_it_said_so():
  row = {"outcome": "refused", "guarantee": "same-backend"}
  assert gpu_checks.as_stated(row, across_backends=True) and not gpu_checks.as_stated(row, across_backends=False)
  assert not gpu_checks.as_stated({"outcome": "refused", "guarantee": "exact"}, across_backends=True)
  assert not gpu_checks.as_stated({"outcome": "WRONG", "guarantee": "same-backend"}, across_backends=True)
  assert gpu_checks.as_stated({"outcome": "one level", "guarantee": "exact"}, across_backends=False)


def test_mixed_precision_computes_in_bfloat16_and_keeps_float32_parameters():
  import jax
  from flax import nnx

  from compzoo.errors import UsageError
  from compzoo.train.loop import compile_step, new_train_state, place
  from compzoo.train import mesh as mesh_lib
  from compzoo.data import pipeline
  from experiments.configs import bmshj2018_factorized
  config = bmshj2018_factorized.get_config("tiny")
  config.train.compute_dtype = "bfloat16"
  objective, state = new_train_state(config)
  convs = [m for _, m in nnx.iter_modules(state.model) if isinstance(m, (nnx.Conv, nnx.ConvTranspose))]
  assert convs and all(m.dtype == jax.numpy.bfloat16 for m in convs)
  assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(state.model, nnx.Param))} == {jax.numpy.dtype("float32")}
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  graphdef, params = place(state, mesh)
  batch = mesh_lib.shard_batch(pipeline.example_batch(config, np.full((8, 8, 3), 90, np.uint8), 2, 32), mesh)
  _, metrics = compile_step(objective, graphdef, mesh)(params, batch, jax.random.PRNGKey(0))
  assert np.isfinite(float(metrics["loss"]))
  config.train.compute_dtype = "float16"
  with pytest.raises(UsageError, match="compute_dtype"):
    new_train_state(config)


def test_codecs_whose_weights_stayed_behind_are_checked_with_stand_ins(tmp_path, monkeypatch):
  assert gpu_checks.entry_folder("gc-mse") == Path("gc/mse-c4")
  assert gpu_checks.entry_folder("cpm-mid") == Path("cpm-mid")
  shipped = tmp_path / "shipped"
  (shipped / "cpm-mid").mkdir(parents=True)
  (shipped / "cpm-mid" / "config.json").write_bytes((learned.SHIPPED_WEIGHTS / "cpm-mid" / "config.json").read_bytes())
  original = exports.read(learned.SHIPPED_WEIGHTS / "cpm-mid").weights_id
  monkeypatch.setattr(learned, "SHIPPED_WEIGHTS", shipped)
  monkeypatch.setattr(learned, "WEIGHTS_ROOT", shipped)
  assert gpu_checks.stand_in_tree(["cpm-mid"], tmp_path / "tree") == {"cpm-mid": "stand-in"}
  assert exports.read(tmp_path / "tree" / "cpm-mid").weights_id != original
