"""The evaluate and bench_train apps run end to end and say what they measured."""

import json
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from compzoo import exports, models
from compzoo.codecs.catalogue import DPLC_OBJECTIVES
from compzoo.errors import UsageError
from train_helpers import tiny_config

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent


def _app(name, *args):
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)


def test_evaluate_benches_a_model_beside_zoo_codecs(tmp_path):
  config = tiny_config()
  exports.write(tmp_path / "export", config, models.build(config.model))
  result = _app("evaluate", f"--workdir={tmp_path / 'export'}", "--images=embedded", "--crop=64", "--codecs=jpeg:quality=50",
                f"--out={tmp_path / 'report'}")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = json.loads((tmp_path / "report" / "results.json").read_text())
  assert {r["codec"] for r in rows} == {"learned", "jpeg:quality=50"}
  assert all(r["bytes"] > 0 and r["psnr"] is not None for r in rows)
  result = _app("evaluate", f"--workdir={tmp_path / 'nothing'}")
  assert result.returncode == 1 and "neither an export" in result.stderr


def test_bench_train_reports_images_per_second():
  result = _app("bench_train", "--config=experiments/configs/bmshj2018_factorized.py:tiny", "--steps=2",
                "--warmup=1")
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["images_per_s"] > 0 and report["batch"] == [4, 64, 64, 3]
  assert report["config"] == "experiments/configs/bmshj2018_factorized.py:tiny"  # rows of a loop say which
  assert report["seconds_per_step"] > 0 and report["step_memory_mb"] > 0 and report["parameters"] > 0


def test_bench_train_gives_jpeg_copies_to_the_refinement_decoder():
  result = _app("bench_train", "--config=experiments/configs/refine.py:tiny-rtrl", "--steps=1", "--warmup=1")
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().splitlines()[-1])["step_memory_mb"] > 0


def test_credit_rules_compares_every_rule_with_bptt(tmp_path):
  config = ml_collections.ConfigDict(dict(model=dict(name="refine", features=4, width=3, stages=2, memory_stride=3)))
  exports.write(tmp_path / "export", config, models.build(config.model))
  result = _app("credit_rules", f"--weights={tmp_path / 'export'}", "--samples=1,20", "--crop=16", f"--out={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((tmp_path / "credit_rules.json").read_text())
  assert report["against_bptt"]["rtrl"]["relative_error"] < 1e-5 and report["steps"] == 8
  assert report["against_bptt"]["tbptt:8"]["relative_error"] == 0.0  # a window past the end
  assert set(report["uoro_mean_cosine"]) == {"1", "20"}


def test_cpm_ablation_compares_the_context_model_with_a_factorized_prior(tmp_path, astronaut):
  from PIL import Image

  for i in range(2):
    Image.fromarray(astronaut[64 * i:64 * i + 48, 100:180]).save(tmp_path / f"{i}.png")
  result = _app("cpm_ablation", "--codecs=cpm-mid", f"--images={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["images"] == 2 and report["file_bpp"] > report["latent_bpp_context_model"] > 0
  assert report["latent_bpp_best_factorized"] > 0 and report["naive_decode_s"] >= 0
  result = _app("cpm_ablation", "--codecs=png", f"--images={tmp_path}")
  assert result.returncode != 0 and "not a context-model autoencoder" in result.stderr


def test_colour_blindness_shows_ms_ssim_charges_colour_less_than_texture(tmp_path, astronaut):
  from PIL import Image

  for i in range(3):
    Image.fromarray(astronaut[100 * i:100 * i + 120, 150:270]).save(tmp_path / f"{i}.png")
  per_mse = {}
  for weights in ([], ["--mse_weight=10", "--colour_weight=60"]):
    result = _app("colour_blindness", f"--images={tmp_path}", "--crop=96", *weights)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    per_mse[bool(weights)] = {row["damage"]: row["distortion_per_1000_mse"] for row in rows}
  assert per_mse[False]["cast_+15_-15_0"] < 0.25 * per_mse[False]["noise_sd_8"]  # MS-SSIM alone
  assert per_mse[True]["cast_+15_-15_0"] > per_mse[True]["noise_sd_8"]  # the cpm recipe's terms
  result = _app("colour_blindness", f"--images={tmp_path}", "--crop=500")
  assert result.returncode != 0 and "at least 500 pixels" in result.stderr


def test_dplc_eval_measures_each_objective_at_the_rates_asked(tmp_path):
  result = _app("dplc_eval", "--dataset=mnist", "--rates=0,8", "--images=64", "--file_images=2", "--grid=4",
                f"--out={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((tmp_path / "results.json").read_text())
  assert report["feature_network"].startswith("classifier-mnist")
  rows = [r for r in report["results"] if "objective" in r]
  assert sorted((r["objective"], r["rate"]) for r in rows) == sorted((o, r) for o in DPLC_OBJECTIVES for r in (0, 8))
  assert all(r["bpp_file"] > r["bpp_payload"] >= r["bpp_nominal"] for r in rows)  # a header, a 32-bit seed
  assert all(abs(r["mse_ratio"] - 1.0) < 1e-9 for r in rows if r["objective"] == "mse")
  for name in ("distortion_vs_rate.png", "distance_vs_rate.png", "samples-wgan.png", "results.md"):
    assert (tmp_path / name).is_file()
  result = _app("dplc_eval", "--dataset=mnist", "--rates=3", f"--out={tmp_path}")
  assert result.returncode != 0 and "ships rates 0, 2, 4" in result.stderr


def test_colour_check_prints_hues_and_saturation_per_crop():
  result = _app("colour_check", "--codecs=jpeg2000:psnr=30")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
  assert [r["crop"] for r in rows] == ["colorwheel", "astronaut", "coffee"]
  assert all(r["hue_agreement"] > 0.95 and 0.9 < r["saturation_ratio"] < 1.1 for r in rows)


def test_gc_eval_measures_codecs_on_camvid_with_label_maps_and_segmentation(tmp_path):
  if not (ROOT.parent / "shared" / "data" / "camvid").is_dir():
    pytest.skip("CamVid not found beside the repository")
  from experiments.configs import feature_net, gc
  sc = gc.get_config("tiny-sc")
  exports.write(tmp_path / "sc", sc, models.build(sc.model))
  seg = feature_net.get_config("tiny-camvid")
  exports.write(tmp_path / "camvid", seg, models.build(seg.model))
  result = _app("gc_eval", "--set=camvid", "--images=2", "--codecs=jpeg:quality=0", f"--exports=sc={tmp_path / 'sc'}",
                f"--features={tmp_path / 'camvid'}", f"--out={tmp_path / 'out'}")
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((tmp_path / "out" / "results.json").read_text())
  assert report["feature_network"].startswith("segmenter-camvid")
  rows = {r["codec"]: r for r in report["results"]}
  assert set(rows) == {"originals", "jpeg:quality=0", "sc"}
  for row in (rows["jpeg:quality=0"], rows["sc"]):
    assert row["bpp"] > 0 and row["swd"] > 0 and row["fid"] >= 0 and 0 <= row["miou"] <= 1
    assert row["psnr_preserved"] > 0 and 0 < row["ms_ssim_preserved"] <= 1


def test_refine_table_compares_refinement_with_jpeg_at_identical_bytes(tmp_path):
  bench = subprocess.run([sys.executable, "-m", "compzoo", "bench", "-m", "jpeg:quality=20,jpeg-refine:quality=20",
                          "--images", "embedded", "--crop", "64", "--limit", "2", "--out", str(tmp_path), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert bench.returncode == 0, bench.stderr[-2000:]
  result = _app("refine_table", f"--results={tmp_path / 'results.json'}")
  assert result.returncode == 0, result.stderr[-2000:]
  row = next(line for line in result.stdout.splitlines() if line.startswith("| jpeg-refine | 20 |"))
  cells = [cell.strip() for cell in row.strip("|").split("|")]
  assert cells[2] == "2" and 0 < int(cells[3]) < 40  # only the container's longer codec name
  assert float(cells[7]) <= float(cells[6])  # the worst image's gain is at most the mean
  assert (tmp_path / "refine_table.md").is_file()
  result = _app("refine_table", f"--results={tmp_path / 'none.json'}")
  assert result.returncode != 0 and "no bench results" in result.stderr


def test_l3c_recipes_change_one_thing_at_the_same_pixels_per_step():
  from experiments.l3c_recipes import RECIPES, recipe_config
  base = recipe_config("x2", 10)
  for name in RECIPES:
    config = recipe_config(name, 10)
    assert config.train.steps == 10 and config.data.crop ** 2 * config.data.batch_size == 64 ** 2 * 8, name
    assert config.objective == base.objective, name
  assert recipe_config("native", 10).data.train_splits == "train+test"
  assert recipe_config("mix-wide", 10).model.features == 48 and recipe_config("mix", 10).model == base.model
  with pytest.raises(UsageError, match="unknown recipe"):
    recipe_config("bigger", 10)
  photos = recipe_config("photos", 10)  # issue #32: continuations of the shipped weights on artefact-free photos
  assert photos.train.init_from.endswith("weights/l3c") and photos.optimizer.learning_rate == 5e-4
  assert photos.data.path.endswith("lossless-photos") and recipe_config("photos-dark", 10).data.darken == (0.15, 0.8)
  scratch = recipe_config("photos-scratch", 10, seed=1, variant="cpu-rgb-shared")
  assert not scratch.train.init_from and scratch.train.seed == 1 and scratch.model.shared_predictor


def test_training_curves_read_hours_and_score_every_kept_checkpoint(tmp_path):
  from experiments.configs import l3c
  from compzoo.train.loop import train_and_evaluate
  config = l3c.get_config("tiny")
  config.data = dict(source="embedded", crop=32, batch_size=2)
  config.train.update(steps=4, log_every=1, checkpoint_every=2, eval_every=4, keep_checkpoints=5)
  train_and_evaluate(config, tmp_path / "run", progress=False)
  result = _app("training_curves", f"--runs=tiny={tmp_path / 'run'}", "--val_limit=1", f"--out={tmp_path / 'c.png'}")
  assert result.returncode == 0, result.stderr[-2000:]
  run = json.loads((tmp_path / "c.json").read_text())["tiny"]
  assert run["steps"] == [1, 2, 3, 4] and run["hours"] == sorted(run["hours"]) and run["hours"][0] > 0
  assert [p["step"] for p in run["checkpoints"]] == [2, 4]
  assert all(0 < p["camvid-val"] < 20 and 0 < p["bsds-val-x2"] < 20 for p in run["checkpoints"])
  assert (tmp_path / "c.png").stat().st_size > 1000
  missing = _app("training_curves", f"--runs=x={tmp_path / 'nothing'}", f"--out={tmp_path / 'd.png'}")
  assert missing.returncode == 1 and "no metrics.csv" in missing.stderr


def test_profile_codec_reports_both_directions(tmp_path):
  from PIL import Image
  image = tmp_path / "crop.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(image)
  result = _app("profile_codec", "--codec=png", f"--image={image}", "--rounds=1", f"--out={tmp_path / 'prof'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "== compress:" in result.stdout and "== decompress:" in result.stdout and "tottime" in result.stdout
  assert sorted(p.name for p in (tmp_path / "prof").iterdir()) == ["compress.prof", "decompress.prof"]
  result = _app("profile_codec", "--codec=png", f"--image={tmp_path / 'missing.png'}")
  assert result.returncode == 1 and result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


def test_run_pool_runs_every_job_and_names_the_log_of_one_that_fails(tmp_path):
  import subprocess
  import sys
  from experiments.l3c_recipes import run_pool
  job = lambda code: (lambda: subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"]), tmp_path / f"{code}.log")
  assert set(run_pool({"a": job(0), "b": job(0), "c": job(0)}, parallel=2)) == {"a", "b", "c"}
  with pytest.raises(RuntimeError, match=f"run bad failed; see {tmp_path / '3.log'}"):
    run_pool({"ok": job(0), "bad": job(3)}, parallel=2)


def test_sparse_figures_write_their_figure_and_numbers(tmp_path):
  result = _app("sparse_figures", "--figure=cone", f"--out={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  numbers = json.loads((tmp_path / "cone.json").read_text())
  strongly_convex = next(iter(numbers["at_600"].values()))
  assert strongly_convex["amp"] < 1e-8 < 1e-5 < strongly_convex["nnmp"]
  assert (tmp_path / "cone.png").stat().st_size > 10_000
  bad = _app("sparse_figures", "--figure=dimensions", "--repetitions=1", "--mnist=/nonexistent", f"--out={tmp_path}")
  assert bad.returncode == 0  # the synthetic figures need no data
  missing = _app("sparse_figures", "--figure=mnist", "--mnist=/nonexistent", f"--out={tmp_path}")
  assert missing.returncode == 1 and "no MNIST file" in missing.stderr and "Traceback" not in missing.stderr
