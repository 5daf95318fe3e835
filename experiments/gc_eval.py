"""Extreme-rate codecs compared on what they keep of a scene (GC and SC, Agustsson et al. 2019).

    python -m experiments.gc_eval --set=camvid --out=runs/gc-camvid-eval
    python -m experiments.gc_eval --set=kodak --out=runs/gc-kodak-eval
    python -m experiments.gc_eval --set=camvid --codecs=jpeg:quality=0 --exports=gc-c4=runs/gc/gc-c4/export

For each codec, over the set's images (CamVid: the 233 test frames with their label maps; Kodak: 24
photos, portraits turned to landscape for the set-level distances): file bpp (an SC file holds its label
map, so its bits count), PSNR, MS-SSIM, the sliced Wasserstein distance between the decoded set and the
originals (compzoo.metrics, no network) and the Fréchet distance in the features of the zoo's CamVid
segmentation network (``segmenter-camvid``, named in every output). On CamVid also: that network's mIoU
on the decoded images against the true label maps (beside its mIoU on the originals), and PSNR and
MS-SSIM inside the preserved region (pixels of classes SC does not synthesize: MS-SSIM of the image whose
other pixels are the original's). Classic codecs run at their lowest setting: the lowest bpp each reaches.
Writes results.json and results.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import app, flags

from compzoo import metrics, zoo
from compzoo.bench import expand_sweeps
from compzoo.bench.distribution import FeatureNetwork
from compzoo.codecs.catalogue import SC_SYNTHESIZE
from compzoo.codecs.learned import LearnedCodec
from compzoo.data import images as image_files
from compzoo.data.images import CAMVID_VOID as VOID
from compzoo.models import segmenter

SETS = {"camvid": "../shared/data/camvid/test", "kodak": "../shared/data/kodak"}
LOWEST = ("jpeg:quality=0", "webp:quality=0", "avif:quality=0", "jpegxl:distance=25")
DEFAULT_CODECS = ("gc", "gc-mse", "sc", "bmshj2018-factorized:quality=1", "cpm-low") + LOWEST
SYNTHESIZE = SC_SYNTHESIZE.default_ids  # the region sc synthesizes by default: sky, road, tree

_SET = flags.DEFINE_enum("set", "camvid", list(SETS), "image set")
_CODECS = flags.DEFINE_list("codecs", list(DEFAULT_CODECS), "zoo codecs (families expand to their sweep)")
_EXPORTS = flags.DEFINE_list("exports", [], "NAME=PATH of trained exports or workdirs, measured too")
_IMAGES = flags.DEFINE_integer("images", 0, "first N images (0: all)")
_FEATURES = flags.DEFINE_string("features", "camvid", "feature network: a shipped NAME or an export's path")
_OUT = flags.DEFINE_string("out", "", "output folder (default runs/gc-SET-eval)")


def load_set(name: str, limit: int):
  """{file name: image}, and {file name: label map} for CamVid (None for Kodak)."""
  root = Path(SETS[name])
  folder = root / "images" if name == "camvid" else root
  pictures = image_files.image_set(str(folder), limit)
  labels = image_files.label_map_set(str(root / "labels"), pictures) if name == "camvid" else None
  return pictures, labels


def landscape(image: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.rot90(image)) if image.shape[0] > image.shape[1] else image


def codecs_to_measure() -> list[tuple[str, object]]:
  built = [(name, zoo.make_codec(name)) for name in expand_sweeps(_CODECS.value)]
  for item in _EXPORTS.value:
    name, _, path = item.partition("=")
    if not path:
      raise app.UsageError(f"--exports takes NAME=PATH, got {item!r}")
    built.append((name, LearnedCodec.from_path(path, name=name)))
  return built


def preserved_mask(labels: np.ndarray) -> np.ndarray:
  return ~np.isin(labels, SYNTHESIZE) & (labels != VOID)


def measure_codec(name, codec, pictures, labels, network, seg_model) -> dict:
  decoded, bits, rows = {}, 0, []
  for file, image in pictures.items():
    side = {"label_map": labels[file]} if "label_map" in codec.side_inputs else {}
    data = codec.compress(image, **side)
    decoded[file] = codec.decompress(data)
    bits += 8 * len(data)
    row = {"psnr": float(metrics.psnr(image, decoded[file]))}
    if min(image.shape[:2]) >= 161:
      row["ms_ssim"] = float(metrics.ms_ssim(image[None].astype(np.float32), decoded[file][None].astype(np.float32))[0])
    if labels is not None:
      keep = preserved_mask(labels[file])
      error = (image.astype(np.float64) - decoded[file])[keep]
      row["psnr_preserved"] = float(10 * np.log10(255.0 ** 2 / max(np.mean(error ** 2), 1e-10)))
      composite = np.where(keep[..., None], decoded[file], image)
      row["ms_ssim_preserved"] = float(metrics.ms_ssim(image[None].astype(np.float32),
                                                       composite[None].astype(np.float32))[0])
    rows.append(row)
  pixels = sum(image.shape[0] * image.shape[1] for image in pictures.values())
  result = {"codec": name, "images": len(pictures), "bpp": bits / pixels}
  for key in rows[0]:
    result[key] = float(np.mean([r[key] for r in rows if key in r]))
  result.update(distances(list(pictures.values()), list(decoded.values()), network))
  if labels is not None and seg_model is not None:
    result["miou"] = miou(seg_model, list(decoded.values()), [labels[f] for f in pictures])
  return result


def distances(originals, decoded, network) -> dict:
  a = np.stack([landscape(x) for x in originals])
  b = np.stack([landscape(x) for x in decoded])
  return {"swd": float(np.mean(metrics.sliced_wasserstein(a, b, levels=4, patches_per_image=64))),
          "fid": network.frechet(a, b)}


def miou(model, images, labels) -> float:
  counts = sum(metrics.confusion(segmenter.predict(model, image[None])[0], label, model.classes, VOID)
               for image, label in zip(images, labels))
  return segmenter.mean_iou(counts)[0]


def markdown(results, network: str, set_name: str) -> str:
  columns = [("bpp", "bpp", 4), ("psnr", "PSNR (dB)", 2), ("ms_ssim", "MS-SSIM", 4), ("swd", "SWD", 1),
             ("fid", "Fréchet", 2)]
  if set_name == "camvid":
    columns += [("miou", "mIoU", 3), ("psnr_preserved", "PSNR kept (dB)", 2), ("ms_ssim_preserved", "MS-SSIM kept", 4)]
  lines = [f"{set_name} ({results[0]['images']} images); Fréchet distance in {network}.", "",
           "| codec | " + " | ".join(title for _, title, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
  for row in results:
    cells = ["" if row.get(key) is None else f"{row[key]:.{digits}f}" for key, _, digits in columns]
    lines.append(f"| {row['codec']} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  pictures, labels = load_set(_SET.value, _IMAGES.value)
  features = Path(_FEATURES.value)
  network = FeatureNetwork.load(features.name, features) if features.is_dir() else FeatureNetwork.load(_FEATURES.value)
  seg_model = network.model if hasattr(network.model, "segment") else None
  out = Path(_OUT.value or f"runs/gc-{_SET.value}-eval")
  out.mkdir(parents=True, exist_ok=True)
  results = []
  if labels is not None and seg_model is not None:
    results.append({"codec": "originals", "images": len(pictures), "bpp": None, "swd": 0.0, "fid": 0.0,
                    "miou": miou(seg_model, list(pictures.values()), [labels[f] for f in pictures])})
  for name, codec in codecs_to_measure():
    if "label_map" in codec.side_inputs and labels is None:
      print(f"skipping {name}: it codes a label map, and {_SET.value} has none")
      continue
    row = measure_codec(name, codec, pictures, labels, network, seg_model)
    results.append(row)
    print(json.dumps(row))
  (out / "results.json").write_text(json.dumps({"feature_network": network.describe(), "results": results}, indent=1))
  (out / "results.md").write_text(markdown(results, network.describe(), _SET.value))
  print((out / "results.md").read_text())


if __name__ == "__main__":
  app.run(main)
