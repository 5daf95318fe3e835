"""Layers shared by several methods."""

from compzoo.nn.layers import GDN, ResidualBlock, depth_to_space, leaky_conv_stack

__all__ = ["GDN", "ResidualBlock", "depth_to_space", "leaky_conv_stack"]
