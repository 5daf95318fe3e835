"""The persistent compilation cache (compzoo/compile_cache.py): where it lives and how it is moved or turned
off, and that a second ``compzoo`` call loads what the first compiled and writes the same bytes and pixels."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from compzoo import compile_cache

_SETTINGS = """
import json, os, sys
from compzoo import compile_cache
path = compile_cache.enable(*sys.argv[1:])
print(json.dumps({"path": str(path) if path else None, "jax_imported": "jax" in sys.modules,
                  "env": {k: v for k, v in os.environ.items() if k.startswith("JAX_")}}))
"""


def _clean_env() -> dict:
  """This process's environment without the cache settings the suite made."""
  return {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != compile_cache.ENV}


def _settings(*args, **env):
  result = subprocess.run([sys.executable, "-c", _SETTINGS, *args], env={**_clean_env(), **env}, capture_output=True,
                          text=True, check=True)
  return json.loads(result.stdout)


def test_default_folder_is_the_user_s_cache_and_jax_is_not_imported_for_it(tmp_path):
  got = _settings(XDG_CACHE_HOME=str(tmp_path))
  assert got["path"] == str(tmp_path / "compzoo" / "jax") and not got["jax_imported"]
  assert got["env"]["JAX_COMPILATION_CACHE_DIR"] == got["path"]
  assert int(got["env"]["JAX_COMPILATION_CACHE_MAX_SIZE"]) > 0  # bounded: JAX then locks the folder
  assert (tmp_path / "compzoo" / "jax").stat().st_mode & 0o077 == 0  # only its owner may write programs in


def test_moved_by_the_environment_or_an_argument_and_turned_off(tmp_path):
  assert _settings(**{compile_cache.ENV: str(tmp_path / "a")})["path"] == str(tmp_path / "a")
  assert _settings(str(tmp_path / "b"), **{compile_cache.ENV: str(tmp_path / "a")})["path"] == str(tmp_path / "b")
  assert _settings(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "c"))["path"] == str(tmp_path / "c")
  off = _settings(**{compile_cache.ENV: "off"})
  assert off["path"] is None and off["env"]["JAX_ENABLE_COMPILATION_CACHE"] == "false"


_PARENT_AND_CHILD = """
import subprocess, sys
import jax
from compzoo import compile_cache
compile_cache.enable(sys.argv[1], bounded=False)
child = "import jax; from compzoo import compile_cache; compile_cache.enable(); "
child += "print(jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size)"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
"""


def test_processes_started_by_a_cache_user_inherit_its_folder_and_its_bound(tmp_path):
  """The suite enables an unbounded cache after JAX is imported; the CLI and apps it starts enable the
  default (bounded) one: they must share the suite's folder unbounded, or they would look for the eviction
  stamps that unbounded writers never leave."""
  out = subprocess.run([sys.executable, "-c", _PARENT_AND_CHILD, str(tmp_path)], env=_clean_env(), capture_output=True,
                       text=True, check=True).stdout.split()
  assert out == [str(tmp_path), "-1"]


def _compzoo(*args, cache):
  return subprocess.run([sys.executable, "-m", "compzoo", "--compile-cache", str(cache), *map(str, args)],
                        env=_clean_env(), capture_output=True, text=True)


@pytest.mark.slow
def test_a_second_call_loads_the_first_one_s_programs_and_writes_the_same_file(tmp_path, astronaut):
  Image.fromarray(astronaut[:48, :80]).save(tmp_path / "in.png")
  cache = tmp_path / "cache"
  stamps = []  # a bounded cache stamps an entry's '-atime' file when it writes it and each time it loads it
  for i in (1, 2):
    assert _compzoo("compress", "-m", "cpm-mid", tmp_path / "in.png", tmp_path / f"{i}.czoo", cache=cache).returncode == 0
    stamps.append({p.name: p.read_bytes() for p in cache.iterdir() if p.name.endswith("-atime")})
  assert stamps[0], "the first call wrote no program"
  # Every program the first call kept, the second loaded. It may keep a program the first compiled just under
  # the 50 ms threshold (compile times vary), so new entries are allowed.
  assert all(stamps[1][name] != stamp for name, stamp in stamps[0].items())
  assert (tmp_path / "1.czoo").read_bytes() == (tmp_path / "2.czoo").read_bytes()
  for i, cache_dir in ((1, cache), (2, "off")):
    assert _compzoo("decompress", tmp_path / "1.czoo", tmp_path / f"{i}.png", cache=cache_dir).returncode == 0
  assert np.array_equal(np.asarray(Image.open(tmp_path / "1.png")), np.asarray(Image.open(tmp_path / "2.png")))


def test_an_unusable_folder_is_a_one_line_error(tmp_path):
  (tmp_path / "file").write_text("")
  result = _compzoo("compress", "-m", "png", tmp_path / "in.png", tmp_path / "o", cache=tmp_path / "file" / "sub")
  assert result.returncode == 2 and "compilation cache" in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1
