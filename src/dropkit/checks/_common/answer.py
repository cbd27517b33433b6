"""The failure type, and the one wrapper through which every check calls the learner's
code (:class:`_Answer`) and every public check runs (:func:`_check`)."""

import functools
import os
import traceback
import warnings

import numpy as np
import torch


class CheckFailed(AssertionError):
    """A learner's solution does not do what the exercise asks; the message says what
    differs."""


def _require(condition, message):
    if not condition:
        raise CheckFailed(message)


def _passed():
    print("all checks passed")


# --- Describing values and calling the learner's code ---------------------------------


def _shape(t):
    return tuple(int(s) for s in t.shape)


def _describe(value):
    """A short description of an argument or a returned value, for messages."""
    if isinstance(value, torch.Tensor):
        where = "" if value.device.type == "cpu" else f" on device '{value.device}'"
        dtype = str(value.dtype).replace("torch.", "")
        if value.dim() == 0:
            return f"a 0-dim {dtype} tensor{where}"
        article = "an" if dtype.startswith("int") else "a"
        return f"{article} {dtype} tensor of shape {_shape(value)}{where}"
    if isinstance(value, np.ndarray):
        article = "an" if str(value.dtype).startswith("int") else "a"
        return f"{article} {value.dtype} array of shape {value.shape}"
    if isinstance(value, torch.nn.Module):
        return f"a model ({type(value).__name__})"
    text = repr(value)
    if isinstance(value, (list, tuple)) and len(value) <= 4 and len(text) > 60:
        inner = ", ".join(_describe(v) for v in value)
        if len(inner) <= 120:
            return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, (list, tuple)) and len(text) > 60:
        return f"a {type(value).__name__} of {len(value)} values"
    return text if len(text) <= 60 else text[:57] + "..."


def _is_inline(value):
    """Whether a value is shown in the call itself rather than described after it."""
    if isinstance(value, (torch.Tensor, np.ndarray, torch.nn.Module)):
        return False
    return len(repr(value)) <= 40


def _snapshot(value):
    """What is needed to tell later whether ``value`` was changed in place."""
    if isinstance(value, torch.Tensor):
        copy = None if value.device.type == "meta" else value.detach().clone()
        return ("tensor", value._version, copy)
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, torch.nn.Module):
        state = {k: v.detach().clone() for k, v in value.state_dict().items()}
        return ("module", state)
    if isinstance(value, (list, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return ("container", type(value)(value), {k: _snapshot(v) for k, v in items})
    if isinstance(value, tuple):
        return ("container", value, {k: _snapshot(v) for k, v in enumerate(value)})
    return None


def _same_values(a, b):
    """torch.equal, with NaN equal to NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if not a.dtype.is_floating_point:
        return False
    return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


def _changed(value, snap):
    """True when ``value`` differs from its snapshot ``snap``."""
    if snap is None:
        return False
    kind = snap[0]
    if kind == "tensor":
        _, version, copy = snap
        if value._version != version:
            return True
        return copy is not None and not _same_values(value.detach(), copy)
    if kind == "array":
        return not np.array_equal(value, snap[1], equal_nan=True)
    if kind == "module":
        now = value.state_dict()
        return now.keys() != snap[1].keys() or any(
            not _same_values(now[k].detach(), v) for k, v in snap[1].items()
        )
    _, shallow, inner = snap
    if isinstance(value, dict):
        if value.keys() != shallow.keys():
            return True
        pairs = value.items()
    else:
        if len(value) != len(shallow) or any(
            a is not b for a, b in zip(value, shallow)
        ):
            return True
        pairs = enumerate(value)
    return any(_changed(v, inner[k]) for k, v in pairs)


_IN_PLACE_HINT = {
    torch.Tensor: "return a new tensor (X * mask, not X.mul_(mask), X *= mask or "
    "X[mask] = 0)",
    np.ndarray: "return a new array (dout * mask, not dout *= mask)",
    torch.nn.Module: "its parameters and buffers must be left as they were",
    list: "work on a copy (sorted(values) or list(values), not values.sort())",
}


def _in_place_hint(value):
    for kind, hint in _IN_PLACE_HINT.items():
        if isinstance(value, kind):
            return hint
    return "work on a copy"


def _learner_line(err):
    """' (line N of your code: `...`)' for the innermost frame of the learner's own
    code in the traceback of ``err``, or ''."""
    here = os.path.dirname(os.path.abspath(__file__))
    library = ("site-packages", "dist-packages", os.path.dirname(os.__file__))
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        name = frame.filename
        if os.path.abspath(name).startswith(here) or any(s in name for s in library):
            continue
        if frame.line:
            return f" (line {frame.lineno} of your code: `{frame.line.strip()}`)"
        return ""
    return ""


class _Answer:
    """The learner's function, called only through this wrapper.

    ``name`` is the name the exercise gives it, ``params`` its parameter names, used to
    show a call as ``name(X, 0.5), X a float16 tensor of shape (4, 4)``. Every call
    checks that its arguments come back unchanged (``check_inputs``) and turns any
    exception into a :class:`CheckFailed` naming the call.
    """

    def __init__(self, fn, name, params):
        _require(
            callable(fn),
            f"pass your function itself to the check (a callable {name}), not "
            f"{_describe(fn)}",
        )
        self.fn, self.name, self.params = fn, name, tuple(params)

    def show(self, *args, **kwargs):
        shown, described = [], []
        for i, value in enumerate(args):
            param = self.params[i] if i < len(self.params) else f"arg{i}"
            if _is_inline(value):
                shown.append(repr(value))
            else:
                shown.append(param)
                described.append(f"{param} {_describe(value)}")
        for key, value in kwargs.items():
            if _is_inline(value):
                shown.append(f"{key}={value!r}")
            else:
                shown.append(f"{key}={key}")
                described.append(f"{key} {_describe(value)}")
        call = f"{self.name}({', '.join(shown)})"
        return call + (" with " + ", ".join(described) if described else "")

    def attempt(self, *args, check_inputs=True, **kwargs):
        """(output, None), or (None, the exception the learner's code raised)."""
        values = list(args) + list(kwargs.values())
        snaps = [_snapshot(v) for v in values] if check_inputs else []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.fn(*args, **kwargs)
        except CheckFailed:
            raise
        except Exception as err:  # the learner's code: any error becomes a hint
            return None, err
        for i, (value, snap) in enumerate(zip(values, snaps)):
            if _changed(value, snap):
                names = list(self.params[: len(args)]) + list(kwargs)
                names += [f"arg{j}" for j in range(len(names), len(values))]
                raise CheckFailed(
                    f"{self.show(*args, **kwargs)} changed its argument {names[i]} in "
                    f"place: leave the inputs as they are; {_in_place_hint(value)}."
                )
        return out, None

    def raised(self, err, *args, hint="", **kwargs):
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return (
            f"{self.show(*args, **kwargs)} raised {type(err).__name__}"
            + (f": {message[:200]}" if message else "")
            + _learner_line(err)
            + (f". {hint}" if hint else "")
        )

    def __call__(self, *args, hint="", **kwargs):
        out, err = self.attempt(*args, **kwargs)
        if err is not None:
            at_one = any(
                type(a) in (int, float) and a == 1 for a in args[1:] + tuple(kwargs)
            )
            if isinstance(err, ZeroDivisionError) and at_one and not hint:
                hint = (
                    "At p = 1 everything is dropped: return zeros instead of dividing "
                    "by 1 - p = 0"
                )
            raise CheckFailed(self.raised(err, *args, hint=hint, **kwargs)) from None
        return out


def _check(check):
    """Make ``check(answer, ...)`` a public check: it runs in a forked random state
    (torch's global generator is left as the caller had it), anything unexpected
    becomes a :class:`CheckFailed`, and success prints ``all checks passed``."""

    @functools.wraps(check)
    def run(*args, **kwargs):
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                check(*args, **kwargs)
            except CheckFailed:
                raise
            except Exception as err:  # a returned value the check could not read
                raise CheckFailed(
                    "your function returned something the check could not read "
                    f"({type(err).__name__}: {str(err)[:200]}); see the exercise for "
                    "what it must return"
                ) from None
        _passed()

    return run
