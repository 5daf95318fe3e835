"""Layers shared by several methods."""

from compzoo.nn.layers import GDN, ResidualBlock

__all__ = ["GDN", "ResidualBlock"]
