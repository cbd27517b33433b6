"""dropkit: dropout, spatial dropout and DropPath for PyTorch, from the dropkit book.

The ops and modules live in :mod:`dropkit.drop` and are re-exported here. The numpy version from
chapter 1 is :mod:`dropkit.scratch`; the d2l data modules, models and training helper are
:mod:`dropkit.data`, :mod:`dropkit.models` and :mod:`dropkit.training`, and chapter 4's Conv1d
classifier is :mod:`dropkit.spatial`; these are imported on first use because they need d2l. Exercise checks are in :mod:`dropkit.checks`.
"""

import importlib

from dropkit import scratch
from dropkit.drop import DropPath, Dropout, SpatialDropout, drop_path, dropout, spatial_dropout

__version__ = "0.1.0"

__all__ = [
    "DropPath",
    "Dropout",
    "SpatialDropout",
    "drop_path",
    "dropout",
    "scratch",
    "spatial_dropout",
]

# Submodules that need d2l (and so torchvision, pandas, ...) load only when used.
_LAZY = {"checks", "data", "models", "spatial", "training"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"dropkit.{name}")
    raise AttributeError(f"module 'dropkit' has no attribute {name!r}")
