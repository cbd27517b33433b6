"""Checks for the book's coding exercises.

Each ``check_*`` function runs a learner's code on inputs chosen to expose the usual
mistakes and either prints ``all checks passed`` or raises :class:`CheckFailed` saying,
in plain words, what is wrong and how to fix it; an exception raised in the learner's
code becomes a :class:`CheckFailed` that names the call and the input that broke it.
Statistical checks use fixed seeds and bounds wide enough (Hoeffding's at a false-alarm
probability of 1e-9 per test, or six standard deviations of an exact distribution) that
a correct solution does not fail by bad luck. A check leaves torch's global random state
as the caller had it.

One module per chapter, named after the chapter's notebook (``dropkit.checks.drop_path``
holds chapter 5's); what they share is in :mod:`dropkit.checks._common`. Every check is
importable from here, as ``dropkit.checks.check_*``.
"""

from dropkit.checks import (
    drop_path,
    dropout_across_devices,
    dropout_from_scratch,
    inverted_scaling,
    mc_dropout,
    memory_speed,
    sequence_dropout,
    spatial_dropout,
    training_with_dropout,
)
from dropkit.checks._common import CheckFailed
from dropkit.checks.drop_path import *  # noqa: F403
from dropkit.checks.dropout_across_devices import *  # noqa: F403
from dropkit.checks.dropout_from_scratch import *  # noqa: F403
from dropkit.checks.inverted_scaling import *  # noqa: F403
from dropkit.checks.mc_dropout import *  # noqa: F403
from dropkit.checks.memory_speed import *  # noqa: F403
from dropkit.checks.sequence_dropout import *  # noqa: F403
from dropkit.checks.spatial_dropout import *  # noqa: F403
from dropkit.checks.training_with_dropout import *  # noqa: F403

# In the book's order.
_CHAPTERS = (
    dropout_from_scratch,
    inverted_scaling,
    training_with_dropout,
    spatial_dropout,
    drop_path,
    memory_speed,
    mc_dropout,
    sequence_dropout,
    dropout_across_devices,
)
__all__ = ["CheckFailed", *(name for module in _CHAPTERS for name in module.__all__)]
