"""BD-rates, RD curves over zoo families, and the report that carries them."""

import pytest

from compzoo.bench import expand_sweeps, write_reports
from compzoo.bench.bdrate import bd_rate, ms_ssim_db
from compzoo.bench.runner import BenchRecord

ANCHOR = [(0.25, 30.0), (0.5, 33.0), (1.0, 36.0), (2.0, 39.0)]


def test_bd_rate_of_a_curve_against_itself_is_zero():
  assert bd_rate(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_measures_a_constant_rate_ratio():
  half = [(r / 2, q) for r, q in ANCHOR]
  assert bd_rate(ANCHOR, half) == pytest.approx(-50.0, abs=1e-6)
  assert bd_rate(half, ANCHOR) == pytest.approx(100.0, abs=1e-6)
  three = [(r * 1.2, q) for r, q in ANCHOR[1:]]  # fewer points, partial overlap
  assert bd_rate(ANCHOR, three) == pytest.approx(20.0, abs=1e-6)


def test_bd_rate_without_overlap_or_points_is_none():
  assert bd_rate(ANCHOR, [(4.0, 45.0), (8.0, 48.0)]) is None
  assert bd_rate(ANCHOR, [(1.0, 36.0)]) is None


def test_ms_ssim_db():
  assert ms_ssim_db(0.9) == pytest.approx(10.0)
  assert ms_ssim_db(0.99) == pytest.approx(20.0)


def test_family_names_expand_to_every_member():
  assert sorted(expand_sweeps(["cpm"])) == ["cpm-high", "cpm-low", "cpm-mid"]
  assert expand_sweeps(["jpeg:quality=5", "png"]) == ["jpeg:quality=5", "png"]


def test_fixed_parameters_expand_the_sweep_and_name_their_own_curve():
  from compzoo import zoo
  names = expand_sweeps(["jpeg-refine:rule=uoro"])
  assert names == [f"jpeg-refine:quality={q}:rule=uoro" for q in (10, 20, 30, 50)]
  assert {zoo.curve_name(name) for name in names} == {"jpeg-refine:rule=uoro"}
  default = zoo.get("jpeg-refine").params["rule"].default
  assert zoo.curve_name(f"jpeg-refine:quality=20:rule={default}") == zoo.curve_name("jpeg-refine") == "jpeg-refine"
  assert zoo.curve_name("jpeg:quality=20") == "jpeg" and zoo.curve_name("cpm-low") == "cpm"
  with pytest.raises(Exception, match="expected one of"):
    expand_sweeps(["jpeg-refine:rule=adam"])


def _record(codec, bpp, psnr, ms_ssim):
  return BenchRecord(codec, "a.png", int(bpp * 1000), bpp, bpp / 3, psnr, ms_ssim, psnr + 5, False, 0.1, 0.1)


def test_report_joins_a_family_into_one_curve_with_bd_rates(tmp_path):
  records = [_record(f"jpeg2000:psnr={q}", r, q, 1 - 10 ** (-q / 30)) for r, q in ANCHOR]
  records += [_record(f"cpm-{p}", r / 2, q, 1 - 10 ** (-q / 30)) for p, (r, q) in zip(("low", "mid", "high"), ANCHOR)]
  paths = write_reports(records, tmp_path, anchor="jpeg2000")
  text = paths["markdown"].read_text()
  row = next(line for line in text.splitlines() if line.startswith("| cpm |"))
  assert row.count("-50.0%") == 2
  jpeg2000 = next(line for line in text.splitlines() if line.startswith("| jpeg2000:psnr=30.0 |"))
  assert "| 35.00 |" in jpeg2000  # the colour PSNR column
  # same-rate rows: cpm-mid (0.25 bpp, 33 dB) against jpeg2000 at 0.25 bpp (30 dB); cpm-low is below its range
  mid = next(line for line in text.splitlines() if line.startswith("| cpm-mid | 0.2500 |"))
  assert mid.count("+3.00") == 2 and "| 0.9206 | +0.0206 |" in mid  # PSNR and colour PSNR; MS-SSIM
  assert next(line for line in text.splitlines() if line.startswith("| cpm-low | 0.1250 |")).count("out of range") == 3
  assert paths["rd_ms_ssim"].is_file()
  assert "no BD-rates" in write_reports(records, tmp_path / "x", anchor="webp")["markdown"].read_text()
