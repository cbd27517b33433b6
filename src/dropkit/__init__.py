"""dropkit: the dropout family for PyTorch, built chapter by chapter in the dropkit
book.

Re-exported here (they need only torch and numpy):

- chapter 1: :func:`dropout` / :class:`Dropout` (:mod:`dropkit.drop`); the numpy version
  is :mod:`dropkit.scratch`;
- chapter 2: :func:`mc_predict`, Monte-Carlo dropout (:mod:`dropkit.inference`), and the
  noises that keep the mean and variance: :func:`alpha_dropout`,
  :func:`feature_alpha_dropout`, :func:`gaussian_dropout` and their modules;
- chapter 4: :func:`spatial_dropout`, :func:`drop_block2d`, :func:`drop_block3d` and
  their modules;
- chapter 5: :func:`drop_path` / :class:`DropPath`, :class:`ViTBlock` and
  :func:`drop_path_rates` (:mod:`dropkit.vit`);
- chapter 6: :func:`lowmem_dropout` / :class:`LowMemDropout` and :func:`philox4x32`
  (:mod:`dropkit.lowmem`), :func:`drop_path_residual` (:mod:`dropkit.skip`);
- chapter 7: :func:`mc_samples`, the uncertainty measures and calibration
  (:mod:`dropkit.uncertainty`);
- chapter 8: :func:`locked_dropout` / :class:`LockedDropout`, :func:`embedding_dropout`
  and :class:`WeightDrop` (:mod:`dropkit.sequence`);
- Part III: :func:`sharded_dropout` / :class:`ShardedDropout`
  (:mod:`dropkit.sharded`), the counter-based mask of a shard of a larger tensor.

Every dropout module subclasses :class:`dropkit.drop._DropoutBase`, which checks ``p``
once and prints it; :func:`mc_predict` finds them all through it.

Loaded on first use, because they need d2l or are tools rather than layers: the data
modules, models and training helper (:mod:`dropkit.data`, :mod:`dropkit.models`,
:mod:`dropkit.training`), chapter 4's Conv1d classifier (:mod:`dropkit.spatial`),
chapter 5's ``TinyViT`` (:mod:`dropkit.vit_model`), the timing helpers
(:mod:`dropkit.bench`), the claim checks (:mod:`dropkit.claims`), the exercise checks
(:mod:`dropkit.checks`), and Part III's launcher of local processes
(:mod:`dropkit.distributed`) and tensor-parallel models (:mod:`dropkit.parallel`).
"""

import importlib

from dropkit import scratch
from dropkit.block import DropBlock2d, DropBlock3d, drop_block2d, drop_block3d
from dropkit.drop import (
    Dropout,
    DropPath,
    SpatialDropout,
    drop_path,
    dropout,
    spatial_dropout,
)
from dropkit.inference import mc_predict
from dropkit.lowmem import LowMemDropout, lowmem_dropout, philox4x32
from dropkit.noise import (
    AlphaDropout,
    FeatureAlphaDropout,
    GaussianDropout,
    alpha_dropout,
    feature_alpha_dropout,
    gaussian_dropout,
)
from dropkit.sequence import (
    LockedDropout,
    WeightDrop,
    embedding_dropout,
    locked_dropout,
)
from dropkit.sharded import ShardedDropout, sharded_dropout
from dropkit.skip import drop_path_residual
from dropkit.uncertainty import (
    calibration_bins,
    expected_calibration_error,
    expected_entropy,
    fit_temperature,
    mc_samples,
    mutual_information,
    predictive_entropy,
    variation_ratio,
)
from dropkit.vit import ViTBlock, drop_path_rates

__version__ = "0.2.0"

__all__ = [
    "AlphaDropout",
    "DropBlock2d",
    "DropBlock3d",
    "DropPath",
    "Dropout",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "LockedDropout",
    "LowMemDropout",
    "ShardedDropout",
    "SpatialDropout",
    "ViTBlock",
    "WeightDrop",
    "alpha_dropout",
    "calibration_bins",
    "drop_block2d",
    "drop_block3d",
    "drop_path",
    "drop_path_rates",
    "drop_path_residual",
    "dropout",
    "embedding_dropout",
    "expected_calibration_error",
    "expected_entropy",
    "feature_alpha_dropout",
    "fit_temperature",
    "gaussian_dropout",
    "locked_dropout",
    "lowmem_dropout",
    "mc_predict",
    "mc_samples",
    "mutual_information",
    "philox4x32",
    "predictive_entropy",
    "scratch",
    "sharded_dropout",
    "spatial_dropout",
    "variation_ratio",
]

# Submodules that need d2l (and so torchvision, pandas, ...) load only when used.
_LAZY = {
    "bench",
    "checks",
    "claims",
    "data",
    "distributed",
    "glue",
    "models",
    "parallel",
    "seeds",
    "spatial",
    "stats",
    "training",
    "vit_model",
}
# Classes of those submodules exported at the top level, also loaded on first use.
_LAZY_NAMES = {"TinyViT": "vit_model"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"dropkit.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"dropkit.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'dropkit' has no attribute {name!r}")
