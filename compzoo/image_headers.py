"""The size a standard image stream declares, read from its header alone, before any decoder sees it.

A compzoo file states its image's shape in the container, and the classic codecs (and ``jpeg-refine``) carry
a PNG, JPEG, WebP, JPEG 2000, JPEG XL or AVIF stream inside. The container's shape passes the pixel limits,
but the library decoders trust the inner header: a 16×16 JPEG whose frame header claims 30000×30000 made
libjpeg allocate and decode 2.5 GB before the size was compared. ``check_size`` refuses such a stream
first, in one line, with no allocation: every reader here looks only at fixed header fields.

Each reader returns (height, width) of the pixels the decoder would return, and refuses what a decoder
would turn into more than one image (animations, image sequences). Layouts: PNG (ISO/IEC 15948 IHDR),
JPEG (ITU T.81 frame header), WebP (RIFF container: VP8, VP8L, VP8X chunks), JPEG 2000 (ISO/IEC 15444-1:
the JP2 ``ihdr`` box and the codestream's SIZ segment), JPEG XL (ISO/IEC 18181-1 SizeHeader and the
orientation in ImageMetadata; bare codestream or ISOBMFF container), AVIF (ISOBMFF ``ispe`` properties).
"""

from __future__ import annotations

import struct

from compzoo.errors import BitstreamError

FORMATS = ("png", "jpeg", "webp", "jpeg2000", "jpegxl", "avif")


def declared_size(fmt: str, data: bytes) -> tuple[int, int]:
  """(height, width) that the ``fmt`` stream ``data`` declares; ``BitstreamError`` if it declares none."""
  try:
    return _READERS[fmt](memoryview(data))
  except (IndexError, struct.error):
    raise BitstreamError(f"{_NAMES[fmt]} stream ends inside its header") from None


def check_size(fmt: str, data: bytes, shape: tuple[int, ...], codec: str) -> None:
  """Refuses ``data`` unless its header declares the container's (height, width)."""
  height, width = declared_size(fmt, data)
  if (height, width) != tuple(shape[:2]):
    raise BitstreamError(f"{codec}: the {_NAMES[fmt]} stream inside declares {width}x{height} pixels, the file "
                         f"claims {shape[1]}x{shape[0]}")


def _png(data) -> tuple[int, int]:
  if bytes(data[:8]) != b"\x89PNG\r\n\x1a\n" or bytes(data[12:16]) != b"IHDR":
    raise BitstreamError("not a PNG stream (no signature and IHDR chunk)")
  width, height = struct.unpack_from(">II", data, 16)
  return height, width


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


def _jpeg(data) -> tuple[int, int]:
  if bytes(data[:2]) != b"\xff\xd8":
    raise BitstreamError("not a JPEG stream (no SOI marker)")
  at = 2
  while True:
    if data[at] != 0xFF:
      raise BitstreamError(f"not a JPEG stream (no marker at byte {at})")
    while data[at] == 0xFF:  # fill bytes may precede a marker
      at += 1
    marker = data[at]
    at += 1
    if marker in _STANDALONE:
      continue
    if marker in (0xD9, 0xDA):  # EOI, SOS: no frame header before the scan data
      raise BitstreamError("JPEG stream has no frame header before its scan")
    length = struct.unpack_from(">H", data, at)[0]
    if marker in SOF_MARKERS:
      height, width = struct.unpack_from(">HH", data, at + 3)
      if height == 0:
        raise BitstreamError("JPEG frame header leaves the height to a DNL marker, which libjpeg does not read")
      return height, width
    at += length


def _webp(data) -> tuple[int, int]:
  if bytes(data[:4]) != b"RIFF" or bytes(data[8:12]) != b"WEBP":
    raise BitstreamError("not a WebP stream (no RIFF/WEBP header)")
  chunk = bytes(data[12:16])
  if chunk != b"VP8X":
    return _webp_frame(data, chunk, 20)
  if data[20] & 0x02:  # extended: flags, then the canvas's width - 1 and height - 1 in 24 bits each
    raise BitstreamError("WebP stream is an animation, not one image")
  width = int.from_bytes(data[24:27], "little") + 1
  height = int.from_bytes(data[27:30], "little") + 1
  at = 12 + 8 + struct.unpack_from("<I", data, 16)[0]
  while True:  # the image chunk follows optional ICC, EXIF and alpha chunks; it must fill the canvas
    chunk, size = bytes(data[at:at + 4]), struct.unpack_from("<I", data, at + 4)[0]
    if chunk in (b"VP8 ", b"VP8L"):
      if _webp_frame(data, chunk, at + 8) != (height, width):
        raise BitstreamError(f"WebP canvas is {width}x{height}, its image another size")
      return height, width
    at += 8 + size + (size & 1)


def _webp_frame(data, chunk: bytes, body: int) -> tuple[int, int]:
  if chunk == b"VP8 ":  # lossy: frame tag, start code, 14-bit width and height (2 scale bits each)
    if bytes(data[body + 3:body + 6]) != b"\x9d\x01\x2a":
      raise BitstreamError("WebP VP8 chunk has no start code")
    width, height = struct.unpack_from("<HH", data, body + 6)
    return height & 0x3FFF, width & 0x3FFF
  if chunk == b"VP8L":  # lossless: signature, then width - 1 and height - 1 in 14 bits each
    if data[body] != 0x2F:
      raise BitstreamError("WebP VP8L chunk has no signature")
    bits = struct.unpack_from("<I", data, body + 1)[0]
    return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
  raise BitstreamError(f"WebP stream starts with an unknown chunk {chunk!r}")


def boxes(data, start: int = 0, end: int | None = None):
  """ISOBMFF boxes (JP2, JPEG XL's container, AVIF) in data[start:end]: -> (type, body start, body end)."""
  end = len(data) if end is None else end
  at = start
  while at + 8 <= end:
    size, kind = struct.unpack_from(">I4s", data, at)
    header = 8
    if size == 1:
      size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
    elif size == 0:
      size = end - at
    if size < header or at + size > end:
      raise BitstreamError(f"box {kind!r} at byte {at} runs past its parent")
    yield kind, at + header, at + size
    at += size


def _jpeg2000(data) -> tuple[int, int]:
  if bytes(data[:4]) == b"\xff\x4f\xff\x51":
    return _siz(data, 0)
  if bytes(data[:12]) != b"\x00\x00\x00\x0cjP  \r\n\x87\n":
    raise BitstreamError("not a JPEG 2000 stream (neither a JP2 signature nor a codestream)")
  top = {kind: (start, end) for kind, start, end in boxes(data)}
  if b"jp2h" not in top or b"jp2c" not in top:
    raise BitstreamError("JP2 stream lacks its header or codestream box")
  header = {kind: start for kind, start, _ in boxes(data, *top[b"jp2h"])}
  if b"ihdr" not in header:
    raise BitstreamError("JP2 header box has no ihdr box")
  box_size = struct.unpack_from(">II", data, header[b"ihdr"])
  siz_size = _siz(data, top[b"jp2c"][0])
  if box_size != siz_size:  # openjpeg sizes the image by the codestream, the file format by ihdr
    raise BitstreamError(f"JP2 header box declares {box_size[1]}x{box_size[0]}, its codestream "
                         f"{siz_size[1]}x{siz_size[0]}")
  return siz_size


def _siz(data, at: int) -> tuple[int, int]:
  """The image area of a codestream's SIZ segment: (Ysiz - YOsiz, Xsiz - XOsiz)."""
  if bytes(data[at:at + 4]) != b"\xff\x4f\xff\x51":
    raise BitstreamError("JPEG 2000 codestream does not start with SOC and SIZ")
  xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", data, at + 8)
  if xosiz >= xsiz or yosiz >= ysiz:
    raise BitstreamError("JPEG 2000 SIZ segment declares an empty image")
  return ysiz - yosiz, xsiz - xosiz


class JxlBits:
  """JPEG XL's bit reader: least significant bit first."""

  def __init__(self, data):
    self.data, self.at = data, 0

  def read(self, count: int) -> int:
    value = 0
    for i in range(count):
      value |= ((self.data[self.at >> 3] >> (self.at & 7)) & 1) << i
      self.at += 1
    return value

  def u32(self, *choices) -> int:
    """U32(d0, d1, d2, d3): two selector bits, then ``(bits, offset)`` of the chosen distribution."""
    bits, offset = choices[self.read(2)]
    return self.read(bits) + offset


_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
JXL_DIMENSION = ((9, 1), (13, 1), (18, 1), (30, 1))  # SizeHeader: U32(BitsOffset(9, 1), ...)
_JXL_PREVIEW_DIV8 = ((0, 16), (0, 32), (5, 1), (9, 33))
_JXL_PREVIEW = ((6, 1), (8, 65), (10, 321), (12, 1345))


def _jxl_dims(bits: JxlBits, coarse, fine) -> tuple[int, int]:
  """A SizeHeader or PreviewHeader: a flag choosing ``coarse`` (a size in 8-pixel units) or ``fine``,
  the height, then a ratio code or the width -> (height, width)."""
  read = coarse if bits.read(1) else fine
  height = read()
  ratio = bits.read(3)
  if ratio:
    num, den = _JXL_RATIOS[ratio]
    return height, height * num // den
  return height, read()


def jxl_image_size(bits: JxlBits) -> tuple[int, int]:
  return _jxl_dims(bits, lambda: (bits.read(5) + 1) * 8, lambda: bits.u32(*JXL_DIMENSION))


def _jxl_preview_size(bits: JxlBits) -> tuple[int, int]:
  return _jxl_dims(bits, lambda: bits.u32(*_JXL_PREVIEW_DIV8) * 8, lambda: bits.u32(*_JXL_PREVIEW))


def _jpegxl(data) -> tuple[int, int]:
  if bytes(data[:2]) != b"\xff\x0a":
    if bytes(data[:12]) != b"\x00\x00\x00\x0cJXL \r\n\x87\n":
      raise BitstreamError("not a JPEG XL stream (neither a codestream nor a container)")
    for kind, start, end in boxes(data, 12):
      if kind == b"jxlc":
        return _jpegxl(data[start:end])
      if kind == b"jxlp":  # the first part holds the headers; 4 bytes of part index come first
        return _jpegxl(data[start + 4:end])
    raise BitstreamError("JPEG XL container has no codestream box")
  bits = JxlBits(data[2:])
  height, width = jxl_image_size(bits)
  orientation = 1
  if not bits.read(1):  # ImageMetadata.all_default
    if bits.read(1):  # extra_fields
      orientation = bits.read(3) + 1
      if bits.read(1):  # have_intrinsic_size (a display hint: not what the decoder returns)
        jxl_image_size(bits)
      if bits.read(1):  # have_preview
        _jxl_preview_size(bits)
      if bits.read(1):  # have_animation
        raise BitstreamError("JPEG XL stream is an animation, not one image")
  return (width, height) if orientation > 4 else (height, width)  # orientations 5-8 transpose


def _avif(data) -> tuple[int, int]:
  """Every image spatial extent (``ispe``) property of the file must agree: compzoo writes one image, with
  no grid, alpha plane or sequence; anything else is refused rather than parsed further."""
  top = {kind: (start, end) for kind, start, end in boxes(data)}
  if b"ftyp" not in top or b"meta" not in top:
    raise BitstreamError("not an AVIF stream (no ftyp and meta boxes)")
  if bytes(data[top[b"ftyp"][0]:top[b"ftyp"][0] + 4]) == b"avis":
    raise BitstreamError("AVIF stream is an image sequence, not one image")
  meta = {kind: (start, end) for kind, start, end in boxes(data, top[b"meta"][0] + 4, top[b"meta"][1])}
  iprp = {kind: (start, end) for kind, start, end in boxes(data, *meta[b"iprp"])} if b"iprp" in meta else {}
  if b"ipco" not in iprp:
    raise BitstreamError("AVIF stream has no item properties")
  sizes = {struct.unpack_from(">II", data, start + 4) for kind, start, _ in boxes(data, *iprp[b"ipco"])
           if kind == b"ispe"}
  if len(sizes) != 1:
    raise BitstreamError(f"AVIF stream declares {len(sizes)} image sizes, not one")
  width, height = sizes.pop()
  return height, width


_READERS = {"png": _png, "jpeg": _jpeg, "webp": _webp, "jpeg2000": _jpeg2000, "jpegxl": _jpegxl, "avif": _avif}
_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "jpeg2000": "JPEG 2000", "jpegxl": "JPEG XL", "avif": "AVIF"}
