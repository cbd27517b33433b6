"""dropkit: dropout, spatial dropout and DropPath for PyTorch, from the dropkit book.

The ops and modules live in :mod:`dropkit.drop` and are re-exported here, as is
:func:`~dropkit.inference.mc_predict` (Monte-Carlo dropout, chapter 2). The numpy version from
chapter 1 is :mod:`dropkit.scratch`; the d2l data modules, models and training helper are
:mod:`dropkit.data`, :mod:`dropkit.models` and :mod:`dropkit.training`, imported on first use
because they need d2l. Chapter 5's :class:`ViTBlock` and :func:`drop_path_rates` are in
:mod:`dropkit.vit`; its d2l model ``TinyViT`` (:mod:`dropkit.vit_model`) is also loaded on first use.
Chapter 6's :func:`lowmem_dropout` (:mod:`dropkit.lowmem`) and :func:`drop_path_residual`
(:mod:`dropkit.skip`) are re-exported too; its timing helpers are :mod:`dropkit.bench`.
Exercise checks are in :mod:`dropkit.checks`.
"""

import importlib

from dropkit import scratch
from dropkit.drop import DropPath, Dropout, SpatialDropout, drop_path, dropout, spatial_dropout
from dropkit.inference import mc_predict
from dropkit.lowmem import LowMemDropout, lowmem_dropout
from dropkit.skip import drop_path_residual
from dropkit.vit import ViTBlock, drop_path_rates

__version__ = "0.1.0"

__all__ = [
    "DropPath",
    "Dropout",
    "LowMemDropout",
    "SpatialDropout",
    "ViTBlock",
    "drop_path",
    "drop_path_residual",
    "drop_path_rates",
    "dropout",
    "lowmem_dropout",
    "mc_predict",
    "scratch",
    "spatial_dropout",
]

# Submodules that need d2l (and so torchvision, pandas, ...) load only when used.
_LAZY = {"bench", "checks", "data", "models", "training", "vit_model"}
# Classes of those submodules exported at the top level, also loaded on first use.
_LAZY_NAMES = {"TinyViT": "vit_model"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"dropkit.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"dropkit.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'dropkit' has no attribute {name!r}")
