"""Shared entropy models: differentiable bits for training, real bytes for coding."""

from compzoo.entropy.base import ConditionalModel, EntropyModel
from compzoo.entropy.categorical import Bernoulli, Categorical
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf
from compzoo.entropy.factorized import FactorizedDensity, FactorizedTables
from compzoo.entropy.logistic_mixture import DiscretizedLogisticMixture
from compzoo.entropy.uniform import Uniform

__all__ = [
    "Bernoulli", "Categorical", "ConditionalModel", "Decoder", "DiscretizedLogisticMixture", "Encoder",
    "EntropyModel", "FactorizedDensity", "FactorizedTables", "PRECISION", "Uniform", "quantize_pmf",
]
