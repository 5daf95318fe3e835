"""Codecs: the shared interface, and the classic codecs learned ones are measured against."""

from compzoo.codecs.base import Codec, check_image, format_codec_name, parse_codec_name

__all__ = ["Codec", "check_image", "format_codec_name", "parse_codec_name"]
