"""Numbers and tensors as learners return them: Python, numpy or torch numbers compared
with a tolerance, tensors checked for type, shape, dtype and device and compared with a
tolerance by dtype."""

import math
import numbers

import numpy as np
import torch

from dropkit.checks._common.answer import CheckFailed, _describe, _require, _shape

# --- Numbers --------------------------------------------------------------------------


def _as_number(value, call):
    """A Python, numpy or one-element torch number (float32 included) as a float;
    anything else fails, saying what ``call`` returned."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if not (value.dtype.is_floating_point or value.dtype == torch.int64):
            value = value.to(torch.float64) if value.dtype != torch.bool else None
        if value is not None and value.device.type != "meta":
            return float(value.detach().reshape(()).cpu())
    elif (
        isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf"
    ):
        return float(value.reshape(()))
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    raise CheckFailed(f"{call} must return a number, but returned {_describe(value)}")


def _numbers_close(got, want, rel=1e-5, abs_=1e-8):
    """Equal within a tolerance that float32 arithmetic meets."""
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def _as_vector(value, call, what="values"):
    """A sequence of numbers (list, tuple, numpy array or tensor, float32 included) as a
    float64 numpy vector; anything else fails."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise CheckFailed(f"{call} must return {what}, not a meta tensor")
        value = value.detach().cpu().to(torch.float64).numpy()
    try:
        array = np.asarray(
            [
                v.detach().cpu().item() if isinstance(v, torch.Tensor) else v
                for v in value
            ]
            if isinstance(value, (list, tuple))
            else value,
            dtype=np.float64,
        )
    except (TypeError, ValueError, RuntimeError):
        array = None
    _require(
        array is not None and array.ndim >= 1,
        f"{call} must return {what} (a list, array or tensor), but returned "
        f"{_describe(value)}",
    )
    return array.reshape(-1) if array.ndim > 1 and 1 in array.shape else array


# --- Tensors --------------------------------------------------------------------------

# (rtol, atol) by dtype: a few units in the last place, for answers that compute the
# same value in another order (x * mask / keep, x / keep * mask, torch.where ...).
_TOLERANCE = {
    torch.float16: (4e-3, 1e-3),
    torch.bfloat16: (3e-2, 1e-2),
    torch.float32: (1e-5, 1e-6),
    torch.float64: (1e-10, 1e-12),
}


def _tol(dtype):
    return _TOLERANCE.get(dtype, (1e-5, 1e-6))


def _close(got, want):
    """allclose with the tolerance of ``want``'s dtype, computed in float64."""
    rtol, atol = _tol(want.dtype)
    return torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol)


def _as_tensor(out, call, *, shape=None, dtype=None, device=None):
    """``out`` must be a tensor, of ``shape``, ``dtype`` and ``device`` when given."""
    _require(
        isinstance(out, torch.Tensor),
        f"{call} must return a tensor, but returned {_describe(out)}",
    )
    if shape is not None:
        _require(
            _shape(out) == tuple(shape),
            f"{call} returned shape {_shape(out)}, but the output must have shape "
            f"{tuple(shape)}",
        )
    if dtype is not None:
        _require(
            out.dtype == dtype,
            f"{call} returned a {str(out.dtype).replace('torch.', '')} tensor: the "
            f"output must keep the input's dtype, {str(dtype).replace('torch.', '')}",
        )
    if device is not None:
        _require(
            out.device.type == torch.device(device).type,
            f"{call} returned a tensor on device '{out.device}': it must stay on the "
            f"input's device, '{device}'",
        )
    return out


def _signed(shape, dtype=torch.float32, seed=0):
    """Values in ±[0.5, 1.5], none near zero, so ``out != 0`` tells the kept entries
    and ``out / x`` the scale."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, shape, generator=g) * 2 - 1
    return (sign * (0.5 + torch.rand(shape, generator=g))).to(dtype)
