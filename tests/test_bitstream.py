import dataclasses
import pytest

from compzoo import bitstream
from compzoo.errors import BitstreamError

CONTAINER = bitstream.Container("jpeg:quality=75", (5, 7, 3), (b"abc", b"", b"\x00" * 10), bytes(range(16)), 0xDEADBEEF)


def test_round_trip():
  assert bitstream.unpack(bitstream.pack(CONTAINER)) == CONTAINER
  plain = dataclasses.replace(CONTAINER, content_check=None, weights_id=bitstream.NO_WEIGHTS, streams=())
  assert bitstream.unpack(bitstream.pack(plain)) == plain


def test_golden_layout():
  """A fixed file: changing the format must be deliberate (and bump VERSION)."""
  data = bitstream.pack(bitstream.Container("png", (1, 2, 3), (b"xy",)))
  assert data.hex() == ("435a4f4f" "01" "00" "0300" "706e67" + "00" * 16 + "01000000" "02000000" "03" "00000000"
                        "01" "02000000" "7879" "8eac682f")


@pytest.mark.parametrize("damage, message", [
    (lambda d: b"XZOO" + d[4:], "not a compzoo file"),
    (lambda d: d[:4] + b"\x09" + d[5:], "unsupported compzoo format version"),
    (lambda d: d[:12], "truncated"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\x00", "oversized"),
    (lambda d: d[:-6] + bytes([d[-6] ^ 1]) + d[-5:], "checksum"),
    (lambda d: b"", "not a compzoo file"),
])
def test_errors_name_the_problem(damage, message):
  with pytest.raises(BitstreamError, match=message):
    bitstream.unpack(damage(bitstream.pack(CONTAINER)))


def test_invalid_shape_rejected_even_with_valid_checksum():
  with pytest.raises(BitstreamError, match="invalid image shape"):
    bitstream.unpack(bitstream.pack(dataclasses.replace(CONTAINER, shape=(0, 7, 3))))
