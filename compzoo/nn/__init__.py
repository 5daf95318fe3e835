"""Layers shared by several methods."""

from compzoo.nn.layers import GDN, ResidualBlock, leaky_conv_stack

__all__ = ["GDN", "ResidualBlock", "leaky_conv_stack"]
