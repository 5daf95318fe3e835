"""Signals in the zoo (issue #36): the container's signal layout, the checks every entry point makes, the
classic signal codecs (exact on many lengths and channel counts), loaders for .npy, challenge .mat and WFDB
records, damaged and crafted files, and the CLI on a PhysioNet recording."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compzoo import bitstream, signals, zoo
from compzoo.bench import fuzz
from compzoo.bench.signals import run_signal_bench, signal_set, summarize
from compzoo.cli import main
from compzoo.data import ecg
from compzoo.data.signals import load_signal, save_signal
from compzoo.errors import BitstreamError, UsageError

CINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cinc2017"
SAMPLE = CINC / "training2017-sample"
needs_cinc = pytest.mark.skipif(not (CINC / "dev.npz").is_file(), reason="needs ../shared/data/cinc2017")
CLASSIC = sorted(name for name, entry in zoo.entries().items() if entry.modality == "signal" and entry.kind == "classic")


def ecg_like(length: int, channels: int = 1, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.cumsum(rng.integers(-40, 41, (length, channels)), axis=0).clip(-32768, 32767).astype(np.int16)


def test_the_classic_signal_codecs_are_registered():
  assert CLASSIC == ["flac", "xz-delta", "zlib-delta"]
  assert all(zoo.get(name).modality == "image" for name in ("png", "jpeg", "l3c"))


def test_signal_container_round_trip_and_image_files_unchanged():
  container = bitstream.Container("flac:level=8", (9000, 2), (b"abc",), content_check=7, sample_rate=300)
  back = bitstream.unpack(bitstream.pack(container))
  assert back == container and back.is_signal
  image = bitstream.Container("png", (4, 5, 3), (b"x",))
  assert not bitstream.unpack(bitstream.pack(image)).is_signal
  data = bytearray(bitstream.pack(dataclasses.replace(container, sample_rate=0)))
  with pytest.raises(BitstreamError, match="invalid signal shape"):
    bitstream.unpack(bytes(data))


def test_signal_layout_is_pinned():
  """Samples in the height field, the rate in the width field, flag bit 1: a change must bump VERSION."""
  container = bitstream.Container("flac:level=8", (9000, 2), (b"abc", b""), content_check=0x01020304, sample_rate=300)
  assert bitstream.pack(container).hex() == (
      "435a4f4f01030c00666c61633a6c6576656c3d3800000000000000000000000000000000282300002c010000020403020102"
      "03000000000000006162635327ee50")


@pytest.mark.parametrize("samples, message", [
    (np.zeros(0, np.int16), "empty"),
    (np.zeros((3, 4, 5), np.int16), "1-D samples or samples × channels"),
    (np.array([1.0, np.nan]), "NaN"),
    (np.array([1.5, 2.0]), "not whole numbers"),
    (np.array([40000, 0]), "do not fit int16"),
    (np.zeros((10, 100), np.int16), "at most 64"),
    (np.array(["a", "b"]), "int16 samples"),
])
def test_bad_signals_are_refused_in_one_line(samples, message):
  with pytest.raises(UsageError, match=message):
    zoo.make_codec("flac").compress(samples)


def test_flac_refuses_more_channels_than_it_holds():
  with pytest.raises(UsageError, match="at most 8 channels"):
    zoo.make_codec("flac").compress(np.zeros((10, 9), np.int16))


def test_whole_floats_and_wider_integers_are_taken_exactly():
  x = ecg_like(50)[:, 0]
  codec = zoo.make_codec("xz-delta")
  for given in (x.astype(np.float64), x.astype(np.int64), x):
    assert np.array_equal(codec.decompress(codec.compress(given)).samples[:, 0], x)
  with pytest.raises(UsageError, match="sample rate"):
    codec.compress(x, sample_rate=0)


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("length, channels", [(1, 1), (2, 1), (3, 2), (17, 1), (1000, 3), (4097, 8)])
def test_classic_codecs_are_exact(name, length, channels):
  codec = zoo.make_codec(name)
  x = ecg_like(length, channels, seed=length)
  x[0, 0], x[-1, -1] = -32768, 32767  # the extremes, and first differences that wrap
  decoded = codec.decompress(codec.compress(x, sample_rate=500))
  assert decoded.sample_rate == 500 and np.array_equal(decoded.samples, x)


def test_a_signal_file_is_not_an_image_file():
  data = zoo.make_codec("flac").compress(ecg_like(20))
  png = bitstream.pack(dataclasses.replace(bitstream.unpack(data), codec="png"))
  with pytest.raises(BitstreamError, match="holds a signal"):
    zoo.make_codec("png").decompress(png)
  image = zoo.make_codec("png").compress(np.zeros((4, 4, 3), np.uint8))
  flac = bitstream.pack(dataclasses.replace(bitstream.unpack(image), codec="flac:level=8"))
  with pytest.raises(BitstreamError, match="holds an image"):
    zoo.make_codec("flac").decompress(flac)


@pytest.mark.parametrize("name", CLASSIC)
def test_damaged_and_crafted_signal_files(name):
  codec, x = zoo.make_codec(name), ecg_like(700)
  assert fuzz.fuzz_codec(codec, x, cases=200, seed=3).rejected >= 198
  fuzz.fuzz_codec(codec, x, cases=60, seed=4, rewrap=True)
  results = fuzz.check_crafted_headers(codec, x, seconds=2.0)
  assert len(results) == 6 and any("over the limit" in message for _, _, message in results)
  assert len(fuzz.check_inner_header_lies(codec, x, seconds=2.0)) == (4 if name == "flac" else 0)


def test_npy_and_wfdb_files_round_trip(tmp_path):
  x = ecg_like(301, 2)
  for name in ("a.npy", "rec.hea", "rec2", "rec3.dat"):
    written = save_signal(tmp_path / name, signals.as_signal(x, 250))
    assert all(path.is_file() for path in written)
    assert load_signal(tmp_path / name, None if name != "a.npy" else 250) == signals.as_signal(x, 250)
  np.save(tmp_path / "one.npy", x[:, 0])
  assert load_signal(tmp_path / "one.npy").shape == (301, 1)
  with pytest.raises(UsageError, match="states 250 Hz"):
    load_signal(tmp_path / "rec.hea", 300)


@pytest.mark.parametrize("content, message", [
    (b"not numpy", "not a readable .npy"), (None, "no such file"), (b"MATLAB junk", "not a readable MATLAB"),
])
def test_bad_signal_files_are_refused_in_one_line(tmp_path, content, message):
  suffix = ".mat" if b"MATLAB" in (content or b"") else ".npy"
  path = tmp_path / f"x{suffix}"
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(UsageError, match=message):
    load_signal(path)
  (tmp_path / "bad.hea").write_text("this is not a header\n")
  with pytest.raises(UsageError, match="WFDB record"):
    load_signal(tmp_path / "bad.hea")
  with pytest.raises(UsageError, match="signals are read from"):
    load_signal(tmp_path / "x.wav")


@needs_cinc
def test_challenge_files_and_the_packed_set_agree(tmp_path):
  folder = ecg.challenge_folder(SAMPLE)
  assert len(folder) == 40 and np.bincount(folder.labels).tolist() == [10, 10, 10, 10]
  packed = ecg.cinc2017(CINC)
  assert len(packed) == 6821 and np.bincount(packed.folds).tolist() == [5682, 1139]
  index = {name: i for i, name in enumerate(packed.names)}
  shared = [n for n in folder.names if n in index]
  assert shared and all(np.array_equal(packed.signals[index[n]], folder.signals[i])
                        for i, n in enumerate(folder.names) if n in index)
  # A .mat without its header reads as the challenge stores it (channels × samples) at the given rate.
  (tmp_path / "A00001.mat").write_bytes((SAMPLE / "A00001.mat").read_bytes())
  assert load_signal(tmp_path / "A00001.mat", 300) == load_signal(SAMPLE / "A00001.hea")


@needs_cinc
def test_signal_bench_on_the_sample_folder():
  recordings = signal_set(SAMPLE, limit=5)
  rows = summarize(run_signal_bench(["flac", "xz-delta"], recordings, progress=False))
  assert [r["codec"] for r in rows] == ["flac", "xz-delta"] and all(r["exact"] for r in rows)
  assert 3.0 < rows[0]["bits_per_sample"] < 6.0
  with pytest.raises(UsageError, match="codes images"):
    run_signal_bench(["png"], recordings, progress=False)


@needs_cinc
def test_cli_compresses_inspects_and_decompresses_a_challenge_recording(tmp_path, capsys):
  mat, out = SAMPLE / "A00001.mat", tmp_path / "a.czoo"
  assert main(["compress", "-m", "flac", str(mat), str(out)]) == 0
  assert "bits/sample (9000 samples × 1 at 300 Hz)" in capsys.readouterr().err
  assert main(["info", str(out)]) == 0
  assert "9000 samples × 1 channel at 300 Hz" in capsys.readouterr().out
  assert main(["decompress", str(out), str(tmp_path / "a.npy")]) == 0
  assert main(["decompress", str(out), str(tmp_path / "rec")]) == 0
  original = load_signal(mat)
  assert load_signal(tmp_path / "a.npy") == original and load_signal(tmp_path / "rec") == original
  for argv, message in [
      (["decompress", str(out), str(tmp_path / "a.npy")], "exists; use --force"),
      (["decompress", str(out), str(tmp_path / "a.png")], "written as .npy or as a WFDB record"),
      (["compress", "-m", "flac", "--sample-rate", "0", str(tmp_path / "a.npy"), str(tmp_path / "b.czoo")], "sample rate 0"),
      (["compress", "-m", "png", "--sample-rate", "300", str(mat), str(tmp_path / "c.czoo")], "--sample-rate is for signal"),
      (["decompress", "--max-samples", "100", str(out), str(tmp_path / "d.npy")], "over the limit of 100"),
  ]:
    assert main(argv) != 0
    assert message in capsys.readouterr().err


@pytest.mark.slow
@needs_cinc
def test_the_compzoo_command_on_a_signal_folder(tmp_path):
  result = subprocess.run([sys.executable, "-m", "compzoo", "bench", "--signals", str(SAMPLE), "--limit", "3",
                           "--out", str(tmp_path / "bench"), "--quiet"], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert "| flac | 3 |" in result.stdout and (tmp_path / "bench" / "results.json").is_file()


def test_files_whose_kind_and_codec_disagree_are_refused_in_one_line(tmp_path, capsys):
  signal_file = bitstream.unpack(zoo.make_codec("flac").compress(ecg_like(20)))
  image_file = bitstream.unpack(zoo.make_codec("png").compress(np.zeros((4, 4, 3), np.uint8)))
  for name, container, output in (("s.czoo", dataclasses.replace(signal_file, codec="png"), "s.npy"),
                                  ("i.czoo", dataclasses.replace(image_file, codec="flac:level=8"), "i.png")):
    (tmp_path / name).write_bytes(bitstream.pack(container))
    assert main(["decompress", str(tmp_path / name), str(tmp_path / output)]) == 1
    err = capsys.readouterr().err
    assert "but names" in err and err.count("\n") == 1
  (tmp_path / "ok.czoo").write_bytes(bitstream.pack(signal_file))
  assert main(["decompress", "--max-pixels", "9", str(tmp_path / "ok.czoo"), str(tmp_path / "ok.npy")]) == 2
  assert "--max-pixels does not apply" in capsys.readouterr().err
  assert main(["info", "--parts", str(tmp_path / "ok.czoo")]) == 2


def test_lying_and_misplaced_inputs_are_refused_in_one_line(tmp_path):
  header = b"\x93NUMPY\x01\x00" + b"{'descr': '<i2', 'fortran_order': False, 'shape': (1099511627776,), }".ljust(118) + b"\n"
  (tmp_path / "huge.npy").write_bytes(header + b"\0" * 16)
  with pytest.raises(UsageError, match="not a readable .npy"):
    load_signal(tmp_path / "huge.npy")
  np.savez(tmp_path / "z.npz", x=np.zeros(3))
  (tmp_path / "z.npz").rename(tmp_path / "z.npy")
  with pytest.raises(UsageError, match="not one array"):
    load_signal(tmp_path / "z.npy")
  with pytest.raises(UsageError, match="up to 655350 Hz"):
    zoo.make_codec("flac").compress(ecg_like(10), sample_rate=700000)
  with pytest.raises(UsageError, match="no such folder"):
    save_signal(tmp_path / "missing" / "rec.hea", signals.as_signal(ecg_like(10)))
  np.savez(tmp_path / "other.npz", delta=np.zeros(3, np.int16))
  with pytest.raises(UsageError, match="not the packed CinC 2017 set"):
    ecg.cinc2017(tmp_path / "other.npz")
