"""The ``compzoo`` command: models, compress, decompress, info, bench, infer.

Errors print one line on stderr and exit 1 (2 for usage errors); ``--debug`` shows the traceback.
``compress`` and ``decompress`` never lose data: they refuse to write over their input, refuse to
overwrite an existing output unless ``--force`` is given (as gzip and zstd do), and write atomically, so
a failed or interrupted run leaves no partial output. Neither imports the trainer or orbax.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from compzoo import compile_cache
from compzoo.errors import BitstreamError, CompzooError, UsageError

DEMO_CODECS = ("png,webp-lossless,jpeg2000-lossless,jpegxl-lossless,l3c,"
               "jpeg:quality=75,webp:quality=75,avif:quality=50,jpeg2000:psnr=35,jpegxl:distance=1,"
               "bmshj2018-factorized:quality=2,cpm-mid")
SIGNAL_CODECS = "flac,xz-delta,zlib-delta"
LEARNED = "learned"  # -m learned --weights DIR: a model from a training workdir or export
WEIGHTS_HELP = f"with -m {LEARNED}: a training workdir or an export folder (config.json + params.msgpack)"


def _models(args) -> None:
  from compzoo import zoo

  for entry in zoo.entries().values():
    params = ",".join(f"{k}={p.default}" for k, p in entry.params.items()) or "-"
    decode = zoo.GUARANTEES.get(entry.guarantee, "as its model's" if entry.needs_weights else "standard format")
    print(f"{entry.name}\t{entry.kind}\t{entry.mode()}\t{entry.modality}\t{params}\t{entry.description}\t"
          f"decode: {decode}")


def _compress(args) -> None:
  from compzoo import data, metrics, zoo

  _check_output(args.input, args.output, args.force)
  codec = zoo.make_codec(args.model, weights=args.weights)
  if codec.modality == "signal":
    return _compress_signal(args, codec)
  if args.sample_rate is not None:
    raise UsageError(f"--sample-rate is for signal codecs; {codec.name} codes images")
  image = data.load_image(args.input)
  side = {} if args.label_map is None else {"label_map": data.load_label_map(args.label_map)}
  payload = codec.compress(image, **side)
  data.write_atomically(args.output, payload)
  height, width, _ = image.shape
  print(f"{args.output}: {codec.name}, {len(payload)} bytes, {metrics.bpp(len(payload), height, width):.4f} bpp",
        file=sys.stderr)


def _compress_signal(args, codec) -> None:
  from compzoo import signals
  from compzoo.data import signals as signal_io

  if args.label_map is not None:
    raise UsageError(f"--label-map is for semantic image codecs; {codec.name} codes signals")
  signal = signal_io.load_signal(args.input, args.sample_rate)
  payload = codec.compress(signal)
  _write(args.output, payload)
  print(f"{args.output}: {codec.name}, {len(payload)} bytes, {signals.bits_per_sample(len(payload), signal):.4f} "
        f"bits/sample ({signal.length} samples × {signal.channels} at {signal.sample_rate} Hz)", file=sys.stderr)


def _decompress(args) -> None:
  from compzoo import bitstream, data, zoo
  from compzoo.data import signals as signal_io

  for name, value in (("--max-pixels", args.max_pixels), ("--max-samples", args.max_samples)):
    if value is not None and value < 1:
      raise UsageError(f"{name} must be positive, got {value}")
  payload = _read(args.input)
  container = bitstream.unpack(payload)
  kind = "signal" if container.is_signal else "image"
  flag, value = ("--max-pixels", args.max_pixels) if container.is_signal else ("--max-samples", args.max_samples)
  if value is not None:
    raise UsageError(f"{flag} does not apply: {args.input} holds {'a signal' if container.is_signal else 'an image'}")
  if container.is_signal:
    signal_io.check_signal_path(args.output)
    outputs = [args.output] if Path(args.output).suffix == ".npy" else signal_io.wfdb_files(args.output)
    for output in outputs:
      _check_output(args.input, output, args.force)
  else:
    _check_output(args.input, args.output, args.force)
    data.check_png_path(args.output)
  codec = zoo.make_codec(container.codec, weights=args.weights)
  if codec.modality != kind:
    raise BitstreamError(f"{args.input} holds {'a' if kind == 'signal' else 'an'} {kind}, but names {codec.name}, "
                         f"which codes {codec.modality}s")
  if container.is_signal:
    signal_io.save_signal(args.output, codec.decompress(payload, max_samples=args.max_samples))
  else:
    data.save_image(args.output, codec.decompress(payload, max_pixels=args.max_pixels))


def _info(args) -> None:
  from compzoo import bitstream, metrics, zoo

  payload = _read(args.input)
  container = bitstream.unpack(payload)
  if container.is_signal:
    if args.parts:
      raise UsageError("--parts is for image files: a signal file's streams are listed without it")
    return _info_signal(container, payload, zoo)
  height, width, channels = container.shape
  print(f"codec:    {container.codec}")
  print(f"image:    {width}x{height}, {channels} channels")
  print(f"size:     {len(payload)} bytes, {metrics.bpp(len(payload), height, width):.4f} bpp, "
        f"{metrics.bpsp(len(payload), height, width, channels):.4f} bpsp")
  print(f"streams:  {', '.join(str(len(s)) for s in container.streams)} bytes")
  print(f"weights:  {container.weights_id.hex() if any(container.weights_id) else 'none'}")
  check = container.content_check
  print(f"check:    {'none' if check is None else f'{check:08x}'}")
  print(f"decode:   {_guarantee(zoo, container.codec)}")
  if args.parts:
    parts = {f"stream {i}": 8 * len(stream) for i, stream in enumerate(container.streams)}
    codec = zoo.make_codec(container.codec, weights=args.weights)
    if getattr(getattr(codec, "model", None), "CODES_PARTS", False) and codec.lossless:
      # One stream, several parts: re-encoding the decoded image writes the same stream, part by part.
      codec.encode_streams(codec.decompress(payload))
      parts = codec.last_parts
    total = max(sum(parts.values()), 1)
    for name, bits in parts.items():
      print(f"  {name + ':':<10}{bits / 8:.0f} bytes, {metrics.bpsp(bits / 8, height, width, channels):.4f} bpsp, "
            f"{100 * bits / total:.1f}%")


def _info_signal(container, payload, zoo) -> None:
  samples, channels = container.shape
  print(f"codec:    {container.codec}")
  print(f"signal:   {samples} samples × {channels} channel{'s' * (channels != 1)} at {container.sample_rate} Hz "
        f"({samples / container.sample_rate:.2f} s)")
  print(f"size:     {len(payload)} bytes, {8 * len(payload) / (samples * channels):.4f} bits/sample")
  print(f"streams:  {', '.join(str(len(s)) for s in container.streams)} bytes")
  print(f"weights:  {container.weights_id.hex() if any(container.weights_id) else 'none'}")
  check = container.content_check
  print(f"check:    {'none' if check is None else f'{check:08x}'}")
  print(f"decode:   {_guarantee(zoo, container.codec).replace('pixels are', 'samples are').replace('image', 'signal')}")


def _guarantee(zoo, codec_name: str) -> str:
  try:
    entry = zoo.get(zoo.parse_codec_name(codec_name)[0])
  except UsageError:
    return "unknown codec (not in this zoo)"
  if entry.needs_weights:
    return "as its model's (decode with --weights; `compzoo models` lists each model family's guarantee)"
  return zoo.GUARANTEES.get(entry.guarantee, "any decoder of the standard format")


def _bench_signals(args) -> None:
  from compzoo import bench
  from compzoo.bench import signals as signal_bench

  from compzoo import zoo

  for flag, value in (("--crop", args.crop), ("--grid", args.grid), ("--label-maps", args.label_maps),
                      ("--anchor", args.anchor)):
    if value:
      raise UsageError(f"{flag} is for image benchmarks, not --signals")
  specs = [spec for spec in (args.models or SIGNAL_CODECS).split(",") if spec.strip()]
  if args.sweep:
    specs = [name for spec in specs for name in ([spec] if spec == LEARNED else bench.expand_sweeps([spec]))]
  if args.weights and LEARNED not in specs:
    raise UsageError(f"--weights given but -m does not list {LEARNED!r}")
  specs = [zoo.make_codec(spec, weights=args.weights) if spec == LEARNED else spec for spec in specs]
  recordings = signal_bench.signal_set(args.signals, args.limit, args.fold)
  records = signal_bench.run_signal_bench(specs, recordings, progress=not args.quiet)
  paths = signal_bench.write_reports(records, args.out)
  print(paths["markdown"].read_text(), end="")
  print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


def _bench(args) -> None:
  from compzoo import bench, data, zoo

  if args.signals:
    return _bench_signals(args)
  if args.fold is not None:
    raise UsageError("--fold selects a fold of --signals DEV.npz")
  specs = [spec for spec in (args.models or DEMO_CODECS).split(",") if spec.strip()]
  if not specs:
    raise UsageError("-m needs at least one codec name")
  if args.sweep:  # 'learned' is no zoo family: it has no sweep
    specs = [name for spec in specs for name in ([spec] if spec == LEARNED else bench.expand_sweeps([spec]))]
  images = data.image_set(args.images, args.limit, args.crop)
  if args.weights and LEARNED not in specs:
    raise UsageError(f"--weights given but -m does not list {LEARNED!r}")
  specs = [zoo.make_codec(spec, weights=args.weights) if spec == LEARNED else spec for spec in specs]
  grid = bench.PictureGrid(images, rows=_grid_rows(args.grid), crop=args.grid_crop) if args.grid else None
  label_maps = data.label_map_set(args.label_maps, images) if args.label_maps else None
  records = bench.run_bench(specs, images, progress=not args.quiet, on_decoded=grid.add if grid else None,
                            label_maps=label_maps)
  paths = bench.write_reports(records, args.out, anchor=args.anchor)
  if grid:
    paths["grid"] = grid.write(Path(args.out) / "grid.png")
  paths["html"] = bench.write_html(args.out, paths, title=f"compzoo bench: {len(images)} images from {args.images}",
                                   note="command: compzoo bench " + " ".join(args.argv))
  print(paths["markdown"].read_text(), end="")
  print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


def _infer(args) -> None:
  from compzoo import data, inference

  if args.max_pixels is not None and args.max_pixels < 1:
    raise UsageError(f"--max-pixels must be positive, got {args.max_pixels}")
  if args.task == "camvid":
    if args.output is None:
      raise UsageError("--task camvid writes a label map: give an output PNG after the file")
    _check_output(args.input, args.output, args.force)
    data.check_png_path(args.output)
  elif args.output is not None:
    raise UsageError(f"--task {args.task} prints its answer; it takes no output file")
  result = inference.infer(_read(args.input), args.task, from_rgb=args.from_rgb, max_pixels=args.max_pixels)
  decoded = "decoded signal" if args.task == "cinc2017" else "decoded pixels"
  source = decoded if result.decoded_pixels else "latents"
  if args.task == "camvid":
    label_map = result.label_map()
    data.save_image(args.output, label_map)  # 2-D uint8: an 8-bit grey PNG of class ids
    shares = np.bincount(label_map.ravel(), minlength=len(result.head.classes)) / label_map.size
    top = ", ".join(f"{result.head.classes[i]} {shares[i]:.0%}" for i in np.argsort(-shares)[:3])
    print(f"{args.output}: {label_map.shape[1]}x{label_map.shape[0]} label map from the file's {source} ({top})")
  else:
    name, probability = result.top()
    print(f"{name}\t{probability:.3f}\t(from the file's {source})")


def _grid_rows(value: str) -> int | list[str]:
  """--grid N (the first N images) or --grid NAME,NAME (those images)."""
  value = value.strip()
  if value.lstrip("-").isdigit():
    return int(value)
  return [name for name in value.split(",") if name]


def _check_output(source, output, force: bool) -> None:
  """Refuses an output that is the input, and an existing output without --force, before any work."""
  source, output = Path(source), Path(output)
  same = (os.path.samefile(source, output) if source.exists() and output.exists()
          else source.resolve() == output.resolve())
  if same:
    raise UsageError(f"output {output} is the input file; choose another output")
  if output.is_dir():
    raise UsageError(f"output {output} is a folder; give a file name")
  if output.exists() and not force:
    raise UsageError(f"output {output} exists; use --force to overwrite it")


def _write(path, payload: bytes) -> None:
  from compzoo import data

  data.write_atomically(path, payload)


def _read(path) -> bytes:
  path = Path(path)
  if not path.is_file():
    raise UsageError(f"no such file: {path}")
  return path.read_bytes()


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="compzoo", description="A zoo of learned and classic image codecs.")
  parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
  parser.add_argument("--compile-cache", metavar="DIR|off",
                      help="where compiled models are kept between calls (default: $COMPZOO_COMPILE_CACHE, "
                           "else ~/.cache/compzoo/jax); 'off' compiles afresh")
  commands = parser.add_subparsers(dest="command", required=True)

  commands.add_parser("models", help="list every registered codec").set_defaults(run=_models)

  p = commands.add_parser("compress", help="compress an image or a signal to a compzoo file")
  p.add_argument("-m", "--model", required=True, help="codec NAME[:key=value...]")
  p.add_argument("--sample-rate", type=int, help="signals: the rate in Hz of a .npy or header-less .mat input "
                 "(default 300; a WFDB header states its own)")
  p.add_argument("--weights", help=WEIGHTS_HELP)
  p.add_argument("--label-map", help="an 8-bit grey PNG of class ids, for codecs that code one (semantic codecs)")
  p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
  p.add_argument("input")
  p.add_argument("output")
  p.set_defaults(run=_compress)

  p = commands.add_parser("decompress", help="decompress a compzoo file to PNG (images), or to .npy or a WFDB "
                          "record (.hea, .dat or no suffix: signals)")
  p.add_argument("--weights", help="the weights a 'learned' file was written with")
  p.add_argument("--max-pixels", type=int, help="refuse files claiming more pixels (default: 2^27, ~134 MP)")
  p.add_argument("--max-samples", type=int, help="refuse signal files claiming more samples × channels (default: 2^27)")
  p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
  p.add_argument("input")
  p.add_argument("output")
  p.set_defaults(run=_decompress)

  p = commands.add_parser("info", help="describe a compzoo file")
  p.add_argument("input")
  p.add_argument("--parts", action="store_true",
                 help="the bytes of each stream, and of each coded part of a learned lossless stream (L3C: each scale; decodes the file)")
  p.add_argument("--weights", help="with --parts, for files of -m learned: the training workdir or export")
  p.set_defaults(run=_info)

  p = commands.add_parser("bench", help="measure codecs on a folder of images (or of signals: --signals)")
  p.add_argument("-m", "--models", help=f"comma-separated codec names (default: {DEMO_CODECS}; with --signals "
                 f"{SIGNAL_CODECS})")
  p.add_argument("--signals", help="benchmark signal codecs on a folder of .npy files and WFDB records, or on "
                 "the packed CinC 2017 dev.npz")
  p.add_argument("--fold", type=int, help="with --signals DEV.npz: only this fold (1: the validation fold)")
  p.add_argument("--images", default="embedded", help="image folder, or 'embedded' for the bundled photos")
  p.add_argument("--out", required=True, help="output folder for results.json, summary.md, plots")
  p.add_argument("--sweep", action="store_true", help="expand bare lossy codec names to their RD sweep")
  p.add_argument("--anchor", help="also report every RD curve's BD-rate against this one (e.g. jpeg2000; several: jpeg,jpeg2000)")
  p.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
  p.add_argument("--label-maps", help="folder of label maps named as the images (8-bit grey PNGs of class "
                 "ids), for codecs that code one (sc); --crop crops them with their images")
  p.add_argument("--crop", type=int, default=0, help="code only the central NxN crop of each image (0: whole)")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  p.add_argument("--weights", help=WEIGHTS_HELP)
  p.add_argument("--grid", default="", metavar="N|NAMES",
                 help="also write grid.png: central crops of the first N images (or of the named ones, "
                      "comma-separated), the original beside every codec")
  p.add_argument("--grid-crop", type=int, default=192, help="side of each crop in the grid (default 192)")
  p.set_defaults(run=_bench)

  p = commands.add_parser("infer", help="classify or segment a compressed file from its latents, without decoding")
  p.add_argument("--task", required=True, choices=("cifar10", "camvid", "cinc2017"),
                 help="cifar10: print the class and its probability; camvid: write the label map (11 classes); "
                      "cinc2017: the rhythm of an ECG file of ecg:rate=R (normal, af, other, noisy)")
  p.add_argument("--from-rgb", action="store_true", help="decode the pixels (or the ECG signal) first and run the "
                 "network trained on decoded ones (for comparison)")
  p.add_argument("--max-pixels", type=int, help="refuse files claiming more pixels, or for ECG files more samples "
                 "(default: 2^27)")
  p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
  p.add_argument("input", help="a compzoo file of torfason-ae or torfason-ae-joint-TASK (ecg:rate=R for cinc2017)")
  p.add_argument("output", nargs="?", help="--task camvid: the label map to write (8-bit grey PNG of class ids)")
  p.set_defaults(run=_infer)
  return parser


def main(argv=None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  argv = list(sys.argv[1:] if argv is None else argv)
  args.argv = argv[argv.index(args.command) + 1:]  # after the subcommand, for reports
  try:
    compile_cache.enable(args.compile_cache)
    args.run(args)
  except UsageError as e:
    if args.debug:
      traceback.print_exc()
    print(f"compzoo: error: {e}", file=sys.stderr)
    return 2
  except CompzooError as e:
    if args.debug:
      traceback.print_exc()
    print(f"compzoo: error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("compzoo: interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # a bug: say so in one line, the traceback is one flag away
    if args.debug:
      traceback.print_exc()
    print(f"compzoo: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
    return 1
  return 0
