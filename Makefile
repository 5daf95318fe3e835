# Fresh machine: `make demo` (set up, then every learned family beside the classic codecs on the embedded
# photos), `make test` (set up, then the whole test suite; `make test-fast` leaves out the slow tests).
# Both create .venv and install compzoo with pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
KODAK ?= ../shared/data/kodak
CAMVID ?= ../shared/data/camvid
CAMVID_TEST ?= $(CAMVID)/test/images
LOSSY_ANCHORS := jpeg,webp,avif,jpeg2000,jpegxl
# The picture grid: the shipped lossy learned codecs beside classic ones at similar rates on Kodak.
GRID_CODECS ?= cpm-low,cpm-mid,cpm-high,jpeg:quality=5,jpeg2000:psnr=24,jpeg2000:psnr=26,webp:quality=0,bmshj2018-factorized:quality=1
JOBS ?= 2
# Lists the catalogue (compzoo/codecs/catalogue.py) holds, read from it when a recipe uses them.
CATALOGUE = $(shell $(BIN)/python -m compzoo.codecs.catalogue $(1))
comma := ,
space := $(subst ,, )
commas = $(subst $(space),$(comma),$(strip $(1)))
# GC's bench and picture grid on CamVid test frames: the GC/SC sweeps beside classic codecs at their lowest.
GC_GRID ?= gc,gc-mse,sc,jpeg:quality=0,webp:quality=0,avif:quality=0

.PHONY: setup demo test test-fast train-tiny train-2x2 bench-train bench-lossless profile-l3c bench-kodak bench-cpm dplc-mnist dplc-cifar10 gc refine bench-refine latent-tasks bench-latent-tasks sparse patch-books bench-patch strassen strassen-cifar strassen-decoder bench-strassen-decoder ecg-lossless ecg-lossy ecg-tasks ship-ecg ecg-classify bench-ecg bench-coder fuzz cross-decode gpu-bundle gpu-restore gpu-dry-run gpu-run lock clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "compzoo needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# 256-pixel crops: every codec on the same pixels, learned ones included; then the per-pixel PixelCNN
# beside L3C on 32-pixel crops (one network pass per pixel against three).
demo: $(STAMP)
	$(BIN)/compzoo bench --images embedded --crop 256 --out runs/demo
	$(BIN)/compzoo bench -m png,l3c,pixelcnn --images embedded --crop 32 --out runs/demo-per-pixel

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q -m 'not slow'

train-tiny: $(STAMP)
	$(BIN)/python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:tiny --workdir=runs/tiny

# The tiny config as a 2-process run on this machine (2 fake CPU devices each, gloo collectives).
train-2x2: $(STAMP)
	$(BIN)/python -m experiments.launch_local --processes=2 --devices_per_process=2 -- \
		--config=experiments/configs/bmshj2018_factorized.py:tiny --workdir=runs/tiny-2x2

bench-train: $(STAMP)
	$(BIN)/python -m experiments.bench_train --config=experiments/configs/bmshj2018_factorized.py:cpu --steps=20

# Lossless on two sets that no recipe was tuned on: Kodak and CamVid's test frames.
LOSSLESS := l3c,l3c-rgb,l3c-rgb-shared,png,webp-lossless,jpeg2000-lossless,jpegxl-lossless
bench-lossless: $(STAMP)
	$(BIN)/compzoo bench -m $(LOSSLESS) --images $(KODAK) --out runs/kodak-lossless
	$(BIN)/compzoo bench -m $(LOSSLESS) --images $(CAMVID_TEST) --out runs/camvid-lossless

# Where L3C's coding time goes on one Kodak image (cProfile after a warm-up).
profile-l3c: $(STAMP)
	$(BIN)/python -m experiments.profile_codec --codec=l3c --image=$(KODAK)/kodim05.png --out runs/profile-l3c

bench-kodak: bench-lossless
	$(BIN)/compzoo bench -m l3c,pixelcnn --images $(KODAK) --limit 4 --crop 64 --out runs/kodak-decode-speed
	$(BIN)/compzoo bench -m jpeg,webp,avif,jpeg2000,jpegxl --sweep --images $(KODAK) --out runs/kodak-lossy

# The learned lossy codecs against the classic ones on two sets, with BD-rates, same-rate colour checks and
# picture grids (look at runs/*/grid.png); then the context model's ablation.
bench-cpm: $(STAMP)
	$(BIN)/compzoo bench -m cpm,bmshj2018-factorized,$(LOSSY_ANCHORS) --sweep --anchor jpeg2000 --images $(KODAK) --out runs/kodak-cpm
	$(BIN)/compzoo bench -m cpm,bmshj2018-factorized,$(LOSSY_ANCHORS) --sweep --anchor jpeg2000 --images $(CAMVID_TEST) --out runs/camvid-cpm
	$(BIN)/compzoo bench -m $(GRID_CODECS) --images $(KODAK) --grid kodim23.png,kodim03.png,kodim05.png --grid-crop 224 --out runs/kodak-grid
	$(BIN)/python -m experiments.cpm_ablation --images=$(KODAK)

# DPLC as shipped (make dplc-mnist, make dplc-cifar10): the feature network, the WGAN-GP generator (rate 0),
# every objective at every rate (code channels: the catalogue's DPLC_RATES), the exports copied into
# compzoo/weights, then the evaluation (tables, plots, grids).
DPLC_RATES_mnist = $(filter-out 0,$(call CATALOGUE,DPLC_RATES.mnist))
DPLC_RATES_cifar10 = $(filter-out 0,$(call CATALOGUE,DPLC_RATES.cifar10))
DPLC_TRAIN = $(BIN)/python -m experiments.train --config=experiments/configs/dplc.py:cpu-$(1)-$(2) \
	--workdir=runs/dplc/$(1)-$(2)-r$(3) --config.model.code_channels=$(3) $(4)
dplc-mnist dplc-cifar10: dplc-%: $(STAMP)
	$(BIN)/python -m experiments.train --config=experiments/configs/feature_net.py:cpu-$* --workdir=runs/features/$*
	$(BIN)/python -m experiments.train --config=experiments/configs/dplc.py:cpu-$*-generator --workdir=runs/dplc/$*-generator
	for r in 0 $(DPLC_RATES_$*); do $(call DPLC_TRAIN,$*,wae,$$r) && $(call DPLC_TRAIN,$*,mse,$$r) || exit 1; done
	for r in $(DPLC_RATES_$*); do $(call DPLC_TRAIN,$*,wgan,$$r,--config.train.init_from=runs/dplc/$*-generator) || exit 1; done
	for r in 0 $(DPLC_RATES_$*); do $(call DPLC_TRAIN,$*,wpp,$$r,--config.train.init_from=runs/dplc/$*-generator) || exit 1; done
	$(BIN)/python -m experiments.ship_weights --family=dplc-$* --runs=runs/dplc --features=runs/features/$*
	$(BIN)/python -m experiments.dplc_eval --dataset=$* --feature_accuracy
	$(BIN)/python -m experiments.dplc_eval --dataset=$* --out=runs/dplc-$*-eval

# GC and SC as shipped (make gc): CamVid's segmenter (the feature network of the distances and the mIoU),
# gc at C = 4 from scratch and at C = 2, 8 warm-started from it, gc-mse at C = 4 and 2 (warm-started), sc
# at C = 4; the exports copied into compzoo/weights/gc; then the evaluation on CamVid test and Kodak and the
# picture grid with its report. Steps are those the shipped runs took (docs/gc.md: training times).
GC_TRAIN = $(BIN)/python -m experiments.train --config=experiments/configs/gc.py:cpu-$(1) --workdir=runs/gc/$(1)-c$(2) \
	--config.model.code_channels=$(2) --config.train.steps=$(3) $(4)
gc: $(STAMP)
	$(BIN)/python -m experiments.train --config=experiments/configs/feature_net.py:cpu-camvid --workdir=runs/features/camvid --config.train.steps=2000
	$(call GC_TRAIN,gc,4,4000)
	$(call GC_TRAIN,gc,2,1000,--config.train.init_from=runs/gc/gc-c4/export)
	$(call GC_TRAIN,gc,8,1000,--config.train.init_from=runs/gc/gc-c4/export)
	$(call GC_TRAIN,mse,4,2000)
	$(call GC_TRAIN,mse,2,600,--config.train.init_from=runs/gc/mse-c4/export)
	$(call GC_TRAIN,sc,4,4000)
	$(BIN)/python -m experiments.ship_weights --family=gc --runs=runs/gc --features=runs/features/camvid
	$(BIN)/python -m experiments.gc_eval --set=camvid --out=runs/gc-camvid-eval
	$(BIN)/python -m experiments.gc_eval --set=kodak --out=runs/gc-kodak-eval
	$(BIN)/compzoo bench -m $(GC_GRID) --images $(CAMVID_TEST) --label-maps $(CAMVID)/test/labels \
	  --sweep --limit 12 --grid 3 --grid-crop 176 --out runs/gc-grid
	$(BIN)/python -m experiments.screenshot_report --report=runs/gc-grid/report.html

# The recurrent JPEG refinement decoder as shipped (make refine): one network per credit rule, same steps and
# batches, exports copied into compzoo/weights/jpeg-refine; then make bench-refine: training cost per rule,
# the rules' gradients against BPTT's, and every rule's network against JPEG (same bytes) and JPEG 2000 on
# Kodak and CamVid test, with the picture grid.
REFINE_RULES = $(call CATALOGUE,REFINE_RULES)
REFINE_CODECS = $(call commas,$(foreach r,$(REFINE_RULES),jpeg-refine:rule=$(r)))
REFINE_JPEG = $(call commas,$(foreach q,$(call CATALOGUE,REFINE_QUALITIES),jpeg:quality=$(q)))
refine: $(STAMP)
	for r in $(REFINE_RULES); do $(BIN)/python -m experiments.train --config=experiments/configs/refine.py:cpu-$$r \
	  --workdir=runs/refine/$$r || exit 1; done
	$(BIN)/python -m experiments.ship_weights --family=jpeg-refine --runs=runs/refine
	$(MAKE) bench-refine

bench-refine: $(STAMP)
	for r in $(REFINE_RULES); do $(BIN)/python -m experiments.bench_train --config=experiments/configs/refine.py:cpu-$$r \
	  --steps=5 || exit 1; done | tee runs/refine-training-cost.jsonl
	$(BIN)/python -m experiments.credit_rules --out=runs/credit-rules
	$(BIN)/compzoo bench -m $(REFINE_JPEG),jpeg2000,$(REFINE_CODECS) --sweep --anchor jpeg,jpeg2000 --images $(KODAK) --out runs/kodak-refine
	$(BIN)/compzoo bench -m $(REFINE_JPEG),jpeg2000,$(REFINE_CODECS) --sweep --anchor jpeg,jpeg2000 --images $(CAMVID_TEST) --out runs/camvid-refine
	$(BIN)/python -m experiments.refine_table --results=runs/kodak-refine/results.json
	$(BIN)/python -m experiments.refine_table --results=runs/camvid-refine/results.json
	$(BIN)/compzoo bench -m jpeg:quality=20,jpeg-refine:quality=20,jpeg2000:psnr=30 --images $(KODAK) \
	  --grid kodim23.png,kodim03.png,kodim05.png --grid-crop 160 --out runs/kodak-refine-grid

# Inference from compressed latents (make latent-tasks): the codec at three rates (low starts from mid), then the task networks on
# originals, decoded pixels and latents (codec frozen), then joint training; exports copied into
# compzoo/weights/latent-tasks; then make bench-latent-tasks: docs/latent-tasks.md's tables (accuracy/mIoU, FLOPs, bpp,
# PSNR) and the codec on Kodak.
LT_RATES = $(call CATALOGUE,LATENT_RATES)
LT_JOBS = codec-mid codec-high codec-low $(foreach t,$(call CATALOGUE,LATENT_TASKS),$(t)-original \
  $(foreach p,rgb latent joint,$(foreach r,$(LT_RATES),$(t)-$(p)-$(r))))
latent-tasks: $(STAMP)
	for j in $(LT_JOBS); do $(BIN)/python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-$$j \
	  --workdir=runs/lt/$$j || exit 1; done
	$(BIN)/python -m experiments.ship_weights --family=latent-tasks --runs=runs/lt
	$(MAKE) bench-latent-tasks

bench-latent-tasks: $(STAMP)
	$(BIN)/python -m experiments.latent_tasks_eval --task=cifar10 --out=runs/lt-eval
	$(BIN)/python -m experiments.latent_tasks_eval --task=camvid --out=runs/lt-eval
	$(BIN)/compzoo bench -m torfason-ae,torfason-ae-joint-camvid,torfason-ae-joint-cifar10,bmshj2018-factorized,jpeg \
	  --sweep --anchor jpeg --images $(KODAK) --out runs/kodak-lt

# Greedy sparse coding's five reproductions (docs/sparse.md): figures and numbers into runs/sparse.
sparse: $(STAMP)
	for f in iterations dimensions large cone mnist; do $(BIN)/python -m experiments.sparse_figures --figure=$$f --out=runs/sparse || exit 1; done

# The patch codecs (docs/patch-codecs.md): their books from BSDS500 train, then RD against JPEG and JPEG 2000 on
# Kodak and CamVid test with BD-rates against the global-PCA control, and a picture grid beside JPEG.
PATCH_CODECS := patch-ssc,patch-ssc:dims=full,patch-kmeans,patch-pca,patch-nonneg
PATCH_GRID ?= patch-ssc:step=56,patch-pca:step=56,patch-nonneg:step=56,jpeg:quality=12,jpeg2000:psnr=28
patch-books: $(STAMP)
	$(BIN)/python -m experiments.patch_fit

bench-patch: $(STAMP)
	$(BIN)/compzoo bench -m $(PATCH_CODECS),jpeg,jpeg2000 --sweep --anchor patch-pca,jpeg,jpeg2000 --images $(KODAK) --out runs/kodak-patch
	$(BIN)/compzoo bench -m $(PATCH_CODECS),jpeg,jpeg2000 --sweep --anchor patch-pca,jpeg,jpeg2000 --images $(CAMVID_TEST) --limit 12 --out runs/camvid-patch
	$(BIN)/compzoo bench -m $(PATCH_GRID) --images $(KODAK) --grid kodim23.png,kodim03.png,kodim05.png --grid-crop 224 --out runs/kodak-patch-grid

# StrassenNets (docs/strassennets.md): 2×2 products by sum-product networks at r = 6, 7, 8 over 200 seeds.
strassen: $(STAMP)
	$(BIN)/python -m experiments.strassen --out=runs/strassen --solution=tests/data/strassen_r7.json

# The CIFAR-10 budget: sum-product convolutions at several r and p, distilled, against narrower plain networks.
strassen-cifar: $(STAMP)
	$(BIN)/python -m experiments.strassen_cifar --out=runs/strassen-cifar

# bmshj2018-factorized-spn: the q2 decoder as sum-product layers, fine-tuned behind the frozen encoder, and shipped.
strassen-decoder: $(STAMP)
	$(BIN)/python -m experiments.strassen_decoder --out=runs/strassen-decoder
	$(BIN)/python -m experiments.strassen_decoder --quality=1 --terms=4 --plain_widths= --out=runs/strassen-decoder-q1 \
	    --chosen=runs/strassen-decoder/chosen
	$(BIN)/python -m experiments.ship_weights --family=bmshj2018-factorized-spn --runs=runs/strassen-decoder/chosen

# The shipped sum-product decoder beside its teacher on the same files: Kodak and CamVid test, and a picture grid.
bench-strassen-decoder: $(STAMP)
	$(BIN)/compzoo bench -m bmshj2018-factorized-spn:quality=2,bmshj2018-factorized:quality=2 --images $(KODAK) --grid kodim23.png,kodim03.png,kodim05.png --grid-crop 224 --out runs/kodak-spn
	$(BIN)/compzoo bench -m bmshj2018-factorized-spn:quality=2,bmshj2018-factorized:quality=2 --images $(CAMVID_TEST) --limit 24 --out runs/camvid-spn

# ECG (issue #36): the learned lossless codec trained on CinC 2017 fold 0 and shipped; the classification study;
# every signal codec on fold 1 (1,139 recordings; ecg-lossless codes sample by sample: about an hour a core).
CINC2017 ?= ../shared/data/cinc2017
ecg-lossless: $(STAMP)
	$(BIN)/python -m experiments.ecg_lossless --out=runs/ecg-lossless --steps=12000 --eval_every=1000

# What the ecg weights folder ships: the lossless codec, the lossy one at three rates, the CinC 2017 heads.
ship-ecg: ecg-lossless ecg-lossy ecg-tasks
	$(BIN)/python -m experiments.ship_weights --family=ecg --runs=runs

ecg-lossy: $(STAMP)
	$(BIN)/python -m experiments.ecg_lossy --out=runs --steps=3000 --rates=mid,low,high

ecg-tasks: $(STAMP)
	$(BIN)/python -m experiments.ecg_latent_tasks --out=runs

ecg-classify: $(STAMP)
	$(BIN)/python -m experiments.ecg_classify --out=runs/ecg-classify --epochs=16

bench-ecg: $(STAMP)
	$(BIN)/compzoo bench --signals $(CINC2017)/dev.npz --fold 1 -m flac,xz-delta,zlib-delta,ecg-lossless,ecg:rate=low,ecg:rate=mid,ecg:rate=high --out runs/ecg-fold1

bench-coder: $(STAMP)
	$(BIN)/python -m experiments.bench_entropy_coder

fuzz: $(STAMP)
	$(BIN)/python -m experiments.fuzz_bitstreams --cases=10000 --rewrap_cases=1000

cross-decode: $(STAMP)
	$(BIN)/python -m experiments.cross_process_decode
	$(BIN)/python -m experiments.cross_process_decode --xla_flags=--xla_cpu_max_isa=AVX

# A lent GPU (issue #31; WORKSPACE.md, "A lent GPU", gives the call): make gpu-bundle prepares .gpu-bundle/
# and sets aside what the run does not need (commit nothing until make gpu-restore); make gpu-dry-run checks
# it here in under a minute; make gpu-run is the command the device runs (no venv there: the image's
# python3 and packages, plus the bundle's wheels), writing report.json, metrics.tar, exports-N.tar and
# run.log to $$OUT.
GPU_BUNDLE ?= .gpu-bundle
gpu-bundle: $(STAMP)
	$(BIN)/python -m experiments.gpu_bundle make --bundle=$(GPU_BUNDLE)

gpu-restore: $(STAMP)
	$(BIN)/python -m experiments.gpu_bundle restore --bundle=$(GPU_BUNDLE)

gpu-dry-run: $(STAMP)
	$(BIN)/python -m experiments.gpu_run --dry_run --bundle=$(GPU_BUNDLE)

gpu-run:
	GPU_BUNDLE=$(GPU_BUNDLE) bash experiments/gpu_run.sh

lock: $(STAMP)
	{ echo "# Versions the test suite last passed with; make installs under these constraints (regenerate: make lock)."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf $(VENV) runs .pytest_cache
