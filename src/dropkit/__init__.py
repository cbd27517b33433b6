"""dropkit: dropout, spatial dropout and DropPath for PyTorch, built chapter by chapter in the dropkit book.

Re-exported here (they need only torch):

- chapter 1: :func:`dropout`, :func:`spatial_dropout`, :func:`drop_path` and their modules
  (:mod:`dropkit.drop`); the numpy version is :mod:`dropkit.scratch`;
- chapter 2: :func:`mc_predict`, Monte-Carlo dropout (:mod:`dropkit.inference`);
- chapter 5: :class:`ViTBlock` and :func:`drop_path_rates` (:mod:`dropkit.vit`);
- chapter 6: :func:`lowmem_dropout` / :class:`LowMemDropout` (:mod:`dropkit.lowmem`) and
  :func:`drop_path_residual` (:mod:`dropkit.skip`);
- chapter 8: :func:`locked_dropout` / :class:`LockedDropout`,
  :func:`embedding_dropout` and :class:`WeightDrop` (:mod:`dropkit.sequence`).

Loaded on first use, because they need d2l or are tools rather than layers: the data modules,
models and training helper (:mod:`dropkit.data`, :mod:`dropkit.models`, :mod:`dropkit.training`),
chapter 4's Conv1d classifier (:mod:`dropkit.spatial`), chapter 5's ``TinyViT``
(:mod:`dropkit.vit_model`), the timing helpers (:mod:`dropkit.bench`) and the exercise checks
(:mod:`dropkit.checks`).
"""

import importlib

from dropkit import scratch
from dropkit.drop import DropPath, Dropout, SpatialDropout, drop_path, dropout, spatial_dropout
from dropkit.inference import mc_predict
from dropkit.lowmem import LowMemDropout, lowmem_dropout
from dropkit.sequence import LockedDropout, WeightDrop, embedding_dropout, locked_dropout
from dropkit.skip import drop_path_residual
from dropkit.vit import ViTBlock, drop_path_rates

__version__ = "0.1.0"

__all__ = [
    "DropPath",
    "Dropout",
    "LockedDropout",
    "LowMemDropout",
    "SpatialDropout",
    "ViTBlock",
    "WeightDrop",
    "drop_path",
    "drop_path_residual",
    "drop_path_rates",
    "dropout",
    "embedding_dropout",
    "locked_dropout",
    "lowmem_dropout",
    "mc_predict",
    "scratch",
    "spatial_dropout",
]

# Submodules that need d2l (and so torchvision, pandas, ...) load only when used.
_LAZY = {"bench", "checks", "data", "models", "spatial", "training", "vit_model"}
# Classes of those submodules exported at the top level, also loaded on first use.
_LAZY_NAMES = {"TinyViT": "vit_model"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"dropkit.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"dropkit.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'dropkit' has no attribute {name!r}")
