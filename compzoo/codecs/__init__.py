"""Codecs: the shared interface, how modules declare zoo entries, classic codecs and learned ones."""

from compzoo.codecs.base import DEFAULT_MAX_PIXELS, Codec, check_image
from compzoo.codecs.entries import GUARANTEES, Param, ZooEntry

__all__ = ["Codec", "DEFAULT_MAX_PIXELS", "GUARANTEES", "Param", "ZooEntry", "check_image"]
