"""Shared entropy models: differentiable bits for training, real bytes for coding (the latent-codec layer).

  * per-symbol models: ``Uniform``, ``DiscretizedLogisticMixture`` (L3C, PixelCNN), ``FactorizedDensity``;
  * learned tables (``tables.py``): ``LearnedTable`` (a categorical per row of a logits parameter) and
    ``CausalContextTable`` (rows picked by coded neighbours, decoded wavefront by wavefront);
  * ``GaussianTables`` (``gaussian.py``): indexed location-scale coding for hyperpriors;
  * the range coder (``coder.py``) under all of them.
"""

from compzoo.entropy.base import ConditionalModel, EntropyModel
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf
from compzoo.entropy.factorized import FactorizedDensity, FactorizedTables
from compzoo.entropy.gaussian import GaussianTables
from compzoo.entropy.logistic_mixture import DiscretizedLogisticMixture
from compzoo.entropy.tables import CausalContextTable, LearnedTable
from compzoo.entropy.uniform import Uniform

__all__ = [
    "CausalContextTable", "ConditionalModel", "Decoder", "DiscretizedLogisticMixture", "Encoder", "EntropyModel",
    "FactorizedDensity", "FactorizedTables", "GaussianTables", "LearnedTable", "PRECISION", "Uniform",
    "quantize_pmf",
]
