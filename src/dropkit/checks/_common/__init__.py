"""What the exercise checks share: the failure type, the one wrapper around a learner's
function, and the probes that every check uses.

- :class:`_Answer` runs the learner's function. Any exception raised in it becomes a
  :class:`CheckFailed` that names the call and the input that broke it (and the line of
  the learner's code that raised), never a traceback from deep inside; and every call
  checks that the inputs come back unchanged, so in-place answers fail.
- :func:`_check` wraps every public check: it runs in a forked random state (the
  caller's generator is left as it was), turns anything unexpected into a
  :class:`CheckFailed`, and prints the pass message.
- Numbers are accepted as Python, numpy or torch numbers, float32 included, and compared
  with a tolerance (:func:`_as_number`, :func:`_as_vector`); tensors with a tolerance by
  dtype (:func:`_close`).
- :func:`_check_mask_dropout` is the probe of every dropout that multiplies its input by
  a random mask: the value at p = 0, zeros at p = 1 with a NaN-free gradient
  (:func:`_check_gradient_at_one`), a kept NaN that stays NaN, the kept values and the
  keep rate at several p measured on multi-dimensional inputs, which axes share one draw
  and which draw independently, a fresh mask on every call without reseeding in between
  (:func:`_check_fresh`), dtype, shape and device (:func:`_check_dtypes_and_device`,
  with the meta device standing in for a GPU).

Statistical tests use Hoeffding's bound at a false-alarm probability of 1e-9 per test,
with fixed seeds: a correct answer does not fail by bad luck.
"""

from dropkit.checks._common.answer import (
    CheckFailed,
    _Answer,
    _check,
    _describe,
    _passed,
    _require,
)
from dropkit.checks._common.probes import (
    _check_dtypes_and_device,
    _check_fresh,
    _check_gradient_at_one,
    _check_mask_dropout,
    _pairings,
    _radius,
    _rate_ok,
    _shared_axis,
)
from dropkit.checks._common.values import (
    _as_number,
    _as_tensor,
    _as_vector,
    _close,
    _numbers_close,
    _signed,
    _tol,
)

__all__ = [
    "CheckFailed",
    "_Answer",
    "_check",
    "_describe",
    "_passed",
    "_require",
    "_check_dtypes_and_device",
    "_check_fresh",
    "_check_gradient_at_one",
    "_check_mask_dropout",
    "_pairings",
    "_radius",
    "_rate_ok",
    "_shared_axis",
    "_as_number",
    "_as_tensor",
    "_as_vector",
    "_close",
    "_numbers_close",
    "_signed",
    "_tol",
]
