"""Recurrent iterative refinement of JPEG (Ororbia & Mali 2019), trained with each credit rule of the study
by Mali, Ororbia, Kifer & Giles (2022):

    python -m experiments.train --config=experiments/configs/refine.py:cpu-sab --workdir=runs/refine/sab
    python -m experiments.train --config=experiments/configs/refine.py:cpu-rtrl --workdir=runs/refine/rtrl
    python -m experiments.bench_train --config=experiments/configs/refine.py:cpu-uoro --steps=5

Variant = size-rule. Every rule trains the same network (compzoo/models/refine.py: K = 3 sweeps, a SAB
memory of every 8th step read by top-4 attention), on the same batches, for the same steps; only the
credit differs:
  ``bptt``   full backpropagation through the K·N-step raster walk (N = 16 patches of a 32×32 crop: 48 steps)
  ``tbptt``  truncated every 8 steps (half a sweep of a 32×32 crop), memory included
  ``sab``    truncated every 8 steps, but credit flows through the attention edges (Ke et al. 2018)
  ``uoro``   unbiased rank-one forward credit (Tallec & Ollivier 2017)
  ``rtrl``   exact forward credit (Williams & Zipser 1989)
Sizes: ``tiny`` (tests), ``cpu`` (the shipped networks: 12 features, an 8-number state per patch, 5,803
parameters, 2000 steps of 8 crops; sized so that RTRL trains in under two hours on 2 cores), ``gpu`` (32
features, 32-number states, 64×64 crops: 192 steps a crop).
Data: crops of BSDS500's train photos and CamVid's train frames (``../shared/data/train/bsds500``,
``../shared/data/camvid``), each compressed by libjpeg at a quality drawn from 5-60; their val splits for
the loop's evaluation. Kodak and CamVid test, where docs/jpeg-refine.md's figures come from, are never looked at in
training.
"""

from experiments.configs import presets

RULES = {"bptt": "bptt", "tbptt": "tbptt:8", "sab": "sab:8", "uoro": "uoro", "rtrl": "rtrl"}
VARIANTS = presets.all_variants(presets.SIZES, tuple(RULES))
QUALITIES = (5, 60)


def get_config(variant: str = "cpu-sab"):
  size, rule = presets.parse_variant(variant, presets.SIZES, tuple(RULES))
  features, width, crop, batch, steps = {
      "tiny": (4, 4, 16, 2, 20),
      "cpu": (12, 8, 32, 8, 2000),
      "gpu": (32, 32, 64, 16, 50_000),
  }[size]
  model = dict(name="refine", features=features, width=width, stages=3, memory_stride=8, memory_topk=4,
               quality_input=True)
  parts = [presets.data("bsds500", crop, batch), presets.data("camvid", crop, batch)]
  data = dict(source="mixture", parts=parts, crop=crop, batch_size=batch, jpeg_quality=QUALITIES,
              eval_split="val", flip=True)
  return presets.config(model=model, objective=dict(name="recurrent", credit=RULES[rule], steps="all"),
                        data=data, optimizer=presets.optimizer(1e-3, warmup=100),
                        train=presets.train(size, steps, eval_images=16))
