"""The catalogue of shipped learned families: one record per folder of compzoo/weights, as data.

A ``Family`` names its folder, the zoo entries that code with its exports, the exports no entry codes with
(task heads, DPLC's shared generator) and how its training runs are named. An ``Entry`` says which export a
codec name picks (``point``: a template over the entry's parameters, with exceptions) and which parameters
are coding options handed to the model (``prepare_coding(tables, **options)``) instead. The zoo
(compzoo/codecs/learned.py), experiments/ship_weights.py and the tests read this; losslessness and the
decode guarantee are read from the model the export builds, never written here. Adding a family is adding a
record.
"""

from __future__ import annotations

import dataclasses
import itertools
import string
from typing import Mapping

from compzoo.codecs.entries import Choice, ClassSet, Param, Points
from compzoo.data.images import CAMVID_CLASSES


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  description: str
  point: str = ""  # the export's folder inside the family's, a str.format template over ``params``
  params: Mapping[str, Param | Choice | ClassSet | Points] = dataclasses.field(default_factory=dict)
  options: tuple[str, ...] = ()  # parameters handed to the model's prepare_coding, not used for the folder
  sweep: tuple[Mapping, ...] = ()  # operating points of the RD curve
  exceptions: Mapping[str, str] = dataclasses.field(default_factory=dict)  # "rate=0" -> another folder
  family: str = ""  # entries that are the points of one RD curve
  group: str = ""  # entries benchmarked together, a curve each
  modality: str = "image"  # what it codes: 'image' or 'signal'

  def folder_params(self) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(self.point) if name]

  def folder(self, params: Mapping) -> str:
    """The export folder (inside the family's) that the canonical ``params`` pick."""
    chosen = {k: params[k] for k in self.folder_params()}
    key = ":".join(f"{k}={v}" for k, v in sorted(chosen.items()))
    return self.exceptions.get(key) or self.point.format(**chosen)

  def folders(self) -> list[str]:
    """Every export folder this entry can pick."""
    names = self.folder_params()
    values = [self.params[name].values() for name in names]
    return list(dict.fromkeys(self.folder(dict(zip(names, combo))) for combo in itertools.product(*values)))


@dataclasses.dataclass(frozen=True)
class Family:
  folder: str  # under compzoo/weights
  entries: tuple[Entry, ...]
  extra_points: tuple[str, ...] = ()  # exports in the folder no entry codes with
  run_prefix: str = ""  # a point's training run is run_prefix + point with '/' -> '-'

  def points(self) -> list[str]:
    return list(dict.fromkeys([p for e in self.entries for p in e.folders()] + list(self.extra_points)))

  def runs(self) -> list[tuple[str, str]]:
    """(training run name, export folder inside the family's) of every shipped export."""
    return [(self.run_prefix + point.replace("/", "-"), point) for point in self.points()]


def _single(name: str, description: str, family: str = "") -> Family:
  """A folder holding one export that one entry codes with."""
  return Family(name, (Entry(name, description, family=family),))


BMSHJ2018_QUALITIES = (1, 2)
BMSHJ2018_SPN_QUALITIES = (1, 2)  # the points whose decoder has a sum-product twin (experiments/strassen_decoder.py)
CPM_POINTS = {"low": "lowest", "mid": "middle", "high": "highest"}
DPLC_OBJECTIVES = {"wgan": "two-stage WGAN (WGAN-GP generator, then encoder with the generator frozen)",
                   "wae": "Wasserstein autoencoder (MMD)", "wpp": "Wasserstein++ (WAE + WGAN-GP)",
                   "mse": "MSE autoencoder at the same rates (the baseline that blurs)"}
DPLC_RATES = {"mnist": (0, 2, 4, 8, 16, 64), "cifar10": (0, 4, 16, 64, 128, 256)}
GC_CHANNELS = {"gc": (2, 4, 8), "gc-mse": (2, 4)}
GC_DEFAULT_CHANNELS = 4  # both entries' default: the C that sc codes at, so the three compare at one rate
GC_POINTS = {"gc": "gc", "gc-mse": "mse"}  # compzoo/weights/gc/<point>-c<channels>
SC_CHANNELS = GC_DEFAULT_CHANNELS
SC_SYNTHESIZE = ClassSet(CAMVID_CLASSES, "sky+road+tree")  # the paper's kinds of region: sky, street, vegetation
SC_SWEEP = ("none", "sky", "sky+road", "sky+road+tree")  # more synthesized, fewer bits
REFINE_RULES = ("bptt", "tbptt", "sab", "uoro", "rtrl")
REFINE_QUALITIES = (10, 20, 30, 50)
LATENT_RATES = ("low", "mid", "high")  # rate targets 0.1, 0.33, 0.64 bpp on the training crops
LATENT_TASKS = ("cifar10", "camvid")
_LATENT_RATE = Choice(LATENT_RATES, "mid")
ECG_RATES = ("low", "mid", "high")  # λ 600, 2400, 9600 per mV² (experiments/ecg_lossy.py)
ECG_TASK_RATES = ("mid",)  # the rates whose files `compzoo infer --task cinc2017` reads (experiments/ecg_latent_tasks.py)

FAMILIES = (
    Family("bmshj2018-factorized", (Entry(
        "bmshj2018-factorized", "Ballé et al. 2018 factorized-prior autoencoder, MSE-trained on BSDS500 (shipped, "
        "small)", "q{quality}", {"quality": Points(BMSHJ2018_QUALITIES, BMSHJ2018_QUALITIES[-1], "qualities")},
        sweep=tuple({"quality": q} for q in BMSHJ2018_QUALITIES)),)),
    Family("bmshj2018-factorized-spn", (Entry(
        "bmshj2018-factorized-spn", "bmshj2018-factorized's coded streams (the same symbols and bytes) decoded by a synthesis "
        "of sum-product layers with ternary weights (StrassenNets, Tschannen et al. 2018): about 13% of its "
        "decoder's multiplications (shipped, small)", "q{quality}",
        {"quality": Points(BMSHJ2018_SPN_QUALITIES, BMSHJ2018_SPN_QUALITIES[-1], "qualities")},
        sweep=tuple({"quality": q} for q in BMSHJ2018_SPN_QUALITIES)),)),
    *(_single(f"cpm-{point}", f"Context-model autoencoder (Mentzer et al. 2018), MS-SSIM trained, 3D-CNN context "
              f"model, importance map; the {rate} of 3 rates (shipped, small)", family="cpm")
      for point, rate in CPM_POINTS.items()),
    *(Family(f"dplc-{dataset}", tuple(Entry(
        f"dplc-{dataset}-{objective}", f"Distribution-preserving lossy compression (Tschannen et al. 2018), {what}, "
        f"on {'MNIST digits (32x32 grey)' if dataset == 'mnist' else 'CIFAR-10 (32x32)'}; rate = code channels x 4 "
        "bits (shipped, small)", f"{objective}/r{{rate}}",
        {"rate": Points(rates, rates[-1], "rates", "code channels")}, sweep=tuple({"rate": r} for r in rates),
        exceptions={"rate=0": "generator"} if objective == "wgan" else {}, group=f"dplc-{dataset}")
        for objective, what in DPLC_OBJECTIVES.items()), run_prefix=f"{dataset}-")
      for dataset, rates in DPLC_RATES.items()),
    Family("gc", tuple(Entry(
        entry, f"Generative compression (Agustsson et al. 2019), {what}; CamVid street scenes, 1/16 latents with 5 "
        "centres, rate = code channels (shipped, small)", f"{GC_POINTS[entry]}-c{{channels}}",
        {"channels": Points(GC_CHANNELS[entry], GC_DEFAULT_CHANNELS, "channels")},
        sweep=tuple({"channels": c} for c in GC_CHANNELS[entry]))
        for entry, what in (("gc", "least-squares GAN, 3-scale patch discriminator, feature matching and MSE"),
                            ("gc-mse", "the same autoencoder on MSE alone (the baseline that isolates the GAN term)")))
        + (Entry("sc", f"Selective generative compression (Agustsson et al. 2019) at {SC_CHANNELS} code channels: "
                 "codes CamVid's label map (compress --label-map) and synthesizes the classes in "
                 "synthesize=NAME+NAME from it; the map's bits count (shipped, small)", f"sc-c{SC_CHANNELS}",
                 {"synthesize": SC_SYNTHESIZE}, options=("synthesize",),
                 sweep=tuple({"synthesize": s} for s in SC_SWEEP)),)),
    Family("jpeg-refine", (Entry(
        "jpeg-refine", "JPEG (the bytes of jpeg:quality=Q) decoded by a recurrent network that refines libjpeg's "
        "pixels 8x8 block by block in 3 sweeps (Ororbia & Mali 2019); rule=bptt|tbptt|sab|uoro|rtrl picks the "
        "credit rule its network was trained with (shipped, small)", "{rule}",
        {"quality": Param(int, 50, 1, 100), "rule": Choice(REFINE_RULES, "bptt")}, options=("quality",),
        sweep=tuple({"quality": q} for q in REFINE_QUALITIES)),)),
    Family("latent-tasks", (Entry(
        "torfason-ae", "Torfason et al. 2018's compression net: factorized-prior autoencoder, 8x downsampling, "
        "64 latent channels, rate=low|mid|high (near 0.1/0.33/0.64 bpp); `compzoo infer` classifies (CIFAR-10) "
        "and segments (CamVid) its files from their latents (shipped, small)", "codec/{rate}", {"rate": _LATENT_RATE},
        sweep=tuple({"rate": r} for r in LATENT_RATES)),) + tuple(Entry(
        f"torfason-ae-joint-{task}", f"torfason-ae trained jointly with the {task} network on its latents "
        "(rate-distortion + task loss, Torfason et al. 2018), rate=low|mid|high (shipped, small)",
        f"{task}/joint-{{rate}}", {"rate": _LATENT_RATE}, sweep=tuple({"rate": r} for r in LATENT_RATES))
        for task in LATENT_TASKS),
        extra_points=tuple(f"{task}/{point}" for task in LATENT_TASKS for point in
                           ["original"] + [f"{path}-{r}" for path in ("rgb", "latent") for r in LATENT_RATES])),
    _single("l3c", "L3C (Mentzer et al. 2019): hierarchical learned lossless coding, learned auxiliary "
            "representations, 3 network passes (shipped, small)"),
    _single("l3c-rgb", "L3C's RGB baseline: a fixed RGB pyramid instead of learned representations"),
    _single("l3c-rgb-shared", "L3C's RGB-shared baseline: RGB pyramid, one predictor for every scale"),
    _single("pixelcnn", "PixelCNN: per-pixel autoregressive lossless coding, one network pass per pixel (the slow "
            "baseline)"),
    Family("ecg", (Entry(
        "ecg-lossless", "Learned lossless ECG codec: a causal dilated CNN predicts each 16-bit sample's logistic "
        "mixture from the 513 before it, range-coded sample by sample; trained on CinC 2017 fold 0 (shipped, "
        "small; signals: .npy, .mat, WFDB)", "lossless", modality="signal"), Entry(
        "ecg", "Learned lossy ECG codec: a 1-D convolutional autoencoder (16 samples -> 8 latents) with a "
        "factorized prior, rate=low|mid|high; `compzoo infer --task cinc2017` classifies AF from its files' "
        "latents (shipped, small; signals)", "{rate}", {"rate": Choice(ECG_RATES, "mid")},
        sweep=tuple({"rate": r} for r in ECG_RATES), modality="signal")),
        extra_points=("tasks/original",) + tuple(f"tasks/{path}-{r}" for path in ("decoded", "latent")
                                                 for r in ECG_TASK_RATES), run_prefix="ecg-"),
    Family("mbt2018-mean", (Entry(
        "mbt2018-mean", "Minnen et al. 2018 mean-scale hyperprior (no context model), MSE-trained on BSDS500 at "
        "bmshj2018-factorized's budget (shipped, small)", "q{quality}",
        {"quality": Points((1, 2, 3, 4), 2, "qualities")}, sweep=tuple({"quality": q} for q in (1, 2, 3, 4))),)),
)


def family(folder: str) -> Family:
  for record in FAMILIES:
    if record.folder == folder:
      return record
  raise KeyError(folder)


def _values(path: str) -> list:
  """``DPLC_RATES.mnist`` -> that constant's values: what the Makefile reads, so no list is spelt twice."""
  name, *keys = path.split(".")
  value = globals()[name]
  for key in keys:
    value = value[key]
  return list(value)


if __name__ == "__main__":  # python -m compzoo.codecs.catalogue DPLC_RATES.mnist -> 0 2 4 8 16 64
  import sys
  print(*_values(sys.argv[1]))

