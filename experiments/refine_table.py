"""jpeg-refine against plain JPEG at identical bytes, per quality and per credit rule, from a bench run:

    compzoo bench -m jpeg:quality=20,jpeg-refine:rule=sab --sweep --images DIR --out runs/x
    python -m experiments.refine_table --results=runs/x/results.json

For every jpeg-refine row with a jpeg row of the same quality on the same image, the file-size difference
(the container's longer codec name only: the JPEG stream is the same bytes) and the PSNR and MS-SSIM gains,
averaged over images (with JPEG's own PSNR and the worst image's gain); then MS-SSIM at 0.25 and 0.5 bpp (interpolated in log bpp along each curve) beside
Toderici et al. 2017's Kodak figures. Prints Markdown; writes refine_table.md beside the results.
"""

import collections
import json
from pathlib import Path

from absl import app, flags

_RESULTS = flags.DEFINE_string("results", None, "results.json of a compzoo bench run")
flags.mark_flag_as_required("results")

TODERICI_2017 = {0.25: 0.904, 0.5: 0.954, 1.0: 0.980}  # Kodak MS-SSIM, Toderici et al. CVPR 2017 (their table)


def main(argv):
  del argv
  import numpy as np

  from compzoo import zoo

  path = Path(_RESULTS.value)
  if not path.is_file():
    raise app.UsageError(f"no bench results at {path}")
  records = json.loads(path.read_text())
  plain = {}
  for r in records:
    name, params = zoo.parse_codec_name(r["codec"])
    if name == "jpeg":
      plain[(int(params["quality"]), r["image"])] = r
  gains = collections.defaultdict(list)
  for r in records:
    name, params = zoo.parse_codec_name(r["codec"])
    if name != "jpeg-refine":
      continue
    quality = int(zoo.canonical_params(zoo.get(name), params)["quality"])
    base = plain.get((quality, r["image"]))
    if base is None:
      continue
    gains[(zoo.curve_name(r["codec"]), quality)].append(
        (r["bytes"] - base["bytes"], r["bpp"], base["psnr"], r["psnr"] - base["psnr"],
         None if r["ms_ssim"] is None else r["ms_ssim"] - base["ms_ssim"]))
  if not gains:
    raise app.UsageError(f"{path} has no jpeg-refine row with a jpeg row of its quality")
  lines = ["| curve | quality | images | extra bytes | bpp | JPEG's PSNR (dB) | ΔPSNR (dB) | worst image ΔPSNR | ΔMS-SSIM |",
           "|---|---|---|---|---|---|---|---|---|"]
  for (curve, quality), rows in sorted(gains.items()):
    extra, bpp, plain_psnr, psnr, ms_ssim = zip(*rows)
    ms = "n/a" if None in ms_ssim else f"{np.mean(ms_ssim):+.4f}"
    lines.append(f"| {curve} | {quality} | {len(rows)} | {np.mean(extra):.0f} | {np.mean(bpp):.4f} | "
                 f"{np.mean(plain_psnr):.2f} | {np.mean(psnr):+.3f} | {min(psnr):+.3f} | {ms} |")
  lines += ["", "MS-SSIM at equal bpp (log-bpp interpolation along each curve; Toderici et al. 2017 on Kodak):", "",
            "| curve | " + " | ".join(f"{b} bpp" for b in TODERICI_2017) + " |", "|---|" + "---|" * len(TODERICI_2017)]
  curves = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in records:
    if r["ms_ssim"] is not None and not r["exact"]:
      curves[zoo.curve_name(r["codec"])][r["codec"]].append((r["bpp"], r["ms_ssim"]))
  for curve, points in sorted(curves.items()):
    means = sorted((np.mean([p[0] for p in v]), np.mean([p[1] for p in v])) for v in points.values())
    if len(means) < 2:
      continue
    rates, values = np.log([m[0] for m in means]), [m[1] for m in means]
    cells = [f"{np.interp(np.log(b), rates, values):.3f}" if rates[0] <= np.log(b) <= rates[-1] else "out of range"
             for b in TODERICI_2017]
    lines.append(f"| {curve} | " + " | ".join(cells) + " |")
  lines.append("| Toderici et al. 2017 | " + " | ".join(f"{v:.3f}" for v in TODERICI_2017.values()) + " |")
  text = "\n".join(lines) + "\n"
  (path.parent / "refine_table.md").write_text(text)
  print(text, end="")


if __name__ == "__main__":
  app.run(main)
