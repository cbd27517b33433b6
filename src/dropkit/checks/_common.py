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

import functools
import math
import numbers
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


# --- Statistics -----------------------------------------------------------------------

_FALSE_ALARM = 1e-9  # per statistical test, for a correct answer


def _radius(n):
    """Hoeffding: the mean of n independent [0, 1] variables lies within this distance
    of its expectation except with probability _FALSE_ALARM."""
    return math.sqrt(math.log(2 / _FALSE_ALARM) / (2 * max(n, 1)))


def _rate_ok(successes, n, expected):
    return abs(successes / n - expected) <= _radius(n)


def _pairings(mask, axis):
    """Two pairings of the entries along ``axis``: neighbours (0 with 1, 2 with 3, ...)
    and halves (i with i + size // 2). Returns [(fraction that agree, pairs)]."""
    size = mask.shape[axis]
    if size < 2:
        return []
    half = size // 2
    index = torch.arange(half)
    out = []
    for a, b in ((2 * index, 2 * index + 1), (index, index + half)):
        agree = mask.index_select(axis, a) == mask.index_select(axis, b)
        out.append((agree.double().mean().item(), agree.numel()))
    return out


def _shared_axis(mask, axes, p):
    """The axis among ``axes`` along which the bool ``mask`` agrees with itself far more
    often than independent draws at rate p would (p^2 + (1-p)^2), the worst one first;
    None when there is none. Under independence each test fails with probability
    _FALSE_ALARM."""
    q = p * p + (1 - p) * (1 - p)
    worst, excess = None, 0.0
    for axis in axes:
        for agree, pairs in _pairings(mask, axis):
            over = agree - q - _radius(pairs)
            if over > excess:
                worst, excess = axis, over
    return worst


# --- Probes ---------------------------------------------------------------------------


def _reset_or_frozen(draw):
    """Why two successive draws were equal: 'resets' when the call reseeds torch's
    global generator (the state after it does not depend on the state before), 'frozen'
    when it leaves the generator where it was, '' otherwise."""
    torch.manual_seed(1)
    draw()
    after_1 = torch.get_rng_state()
    torch.manual_seed(2)
    before = torch.get_rng_state()
    draw()
    after_2 = torch.get_rng_state()
    if torch.equal(after_1, after_2):
        return "resets"
    if torch.equal(before, after_2):
        return "frozen"
    return ""


def _check_fresh(draw, call, what="mask", calls=2):
    """``draw()`` returns a bool tensor (the mask of one call); ``calls`` successive
    calls, with no reseeding in between, must not all give the same one."""
    torch.manual_seed(0)
    masks = [draw() for _ in range(calls)]
    if any(not torch.equal(masks[0], m) for m in masks[1:]):
        return
    why = _reset_or_frozen(draw)
    n = "two" if calls == 2 else str(calls)
    if why == "resets":
        raise CheckFailed(
            f"calling {call} resets torch's global random number generator (is there "
            "a torch.manual_seed inside it?): every call then gives the same "
            f"{what}, so the network trains with one fixed thinned network, and "
            "everything drawn after it is reseeded too. Seed once, outside the "
            "function."
        )
    cause = (
        "It leaves torch's global generator where it was (a draw inside "
        "torch.random.fork_rng?)."
        if why == "frozen"
        else "Is a generator seeded inside the function (torch.manual_seed("
        "torch.initial_seed()), fork_rng with a seed, torch.Generator().manual_seed), "
        f"or a {what} drawn once and reused?"
    )
    raise CheckFailed(
        f"{n} calls of {call} in a row, with no reseeding in between, drew the same "
        f"{what}: a {what} must be drawn afresh on every call. {cause}"
    )


def _check_dtypes_and_device(run, make, call, *, meta=True, mask_hint=True):
    """``run(x)`` is the learner's function on input ``x = make(dtype, device)``. The
    output must keep float16, bfloat16 and float64 inputs' dtype and stay on the meta
    device (which stands in for a GPU: a mask made with torch.rand(X.shape) lands on
    the CPU there as it would on a GPU)."""
    how = (
        ", so make the mask from the input (X.new_empty(X.shape) or "
        "torch.rand_like(X)). torch.rand(X.shape) uses torch's default dtype, and "
        ".float() forces float32"
        if mask_hint
        else ""
    )
    for dtype in (torch.float16, torch.float64, torch.bfloat16):
        x = make(dtype, "cpu")
        out = run(x)
        got = out.dtype if isinstance(out, torch.Tensor) else _describe(out)
        _require(
            isinstance(out, torch.Tensor) and out.dtype == dtype,
            f"for a {dtype} input your output is {got}: the "
            + ("mask" if mask_hint else "output")
            + " must have the input's dtype"
            + how,
        )
    if not meta:
        return
    x = make(torch.float32, "meta")
    out, err = run(x, attempt=True)
    if err is not None:
        text = str(err)
        if "device" in text and "meta" in text:
            raise CheckFailed(
                f"for an input on device 'meta' {call} failed "
                f"({text.splitlines()[0]}). "
                "Make the mask on the input's device (X.new_empty(X.shape) or "
                "torch.rand_like(X)); torch.rand(X.shape) makes it on torch's default "
                "device, the CPU unless you changed it."
            )
        return  # meta cannot run this code (.item(), data-dependent shapes): no verdict
    _require(
        isinstance(out, torch.Tensor) and out.device.type == "meta",
        f"for an input on device 'meta' (a stand-in for a GPU) your output is on "
        f"{out.device if isinstance(out, torch.Tensor) else _describe(out)}: make the "
        "output on the input's device",
    )


def _check_gradient_at_one(run, x, call):
    """The gradient of ``run(x)`` (at p = 1) must have no NaN: x / (1 - p) computed and
    then masked (torch.where, or a multiplication by 0) gives 0 * inf = NaN in
    backward."""
    x = x.detach().clone().requires_grad_()
    out = run(x)
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        return  # no gradient flows back to x: nothing to poison
    try:
        out.sum().backward()
    except Exception as err:
        raise CheckFailed(
            f"backward through {call} raised {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    _require(
        x.grad is None or not torch.isnan(x.grad).any(),
        f"at p=1 the output of {call} is zero, but its gradient is NaN: x / (1 - p) "
        "is inf there, and masking it (torch.where, or a multiplication by 0) makes "
        "0 * inf = NaN in backward. Return zeros when p == 1, without dividing.",
    )


def _inverted(p):
    return 1 / (1 - p)


def _scale_hints(p, ratio, kept_scale):
    """What a wrong constant scale of the kept entries says about the answer."""
    right = kept_scale(p)
    candidates = [
        (1.0, "Did you forget to rescale the kept entries (inverted dropout)?"),
        (
            1 / p if p > 0 else math.inf,
            "Is p the probability to drop (PyTorch's convention), not to keep?",
        ),
        (1 - p, "The kept entries are divided by 1 - p, not multiplied."),
        (
            1 / (1 - p) if p < 1 else math.inf,
            "The original scheme does not rescale "
            "in training; the 1/(1-p) belongs to inverted dropout.",
        ),
    ]
    for value, hint in candidates:
        if not math.isclose(value, right, rel_tol=1e-6) and math.isclose(
            ratio, value, rel_tol=1e-3
        ):
            return hint
    return ""


def _check_mask_dropout(
    f,
    shapes,
    shared=(),
    *,
    hint="",
    axes=("sample",),
    extra=(),
    ps=(0.2, 0.5, 0.8),
    kept_scale=_inverted,
    kept_text="x/(1-p)",
    meta=True,
    name=None,
    nan_text="dividing by 1 - p = 0 gives 0/0 (or inf * 0). Return zeros when p == 1.",
):
    """The probe of a dropout ``f(x, p, *extra)`` that multiplies x by a random mask
    with one draw per index of the axes not in ``shared`` (shared along those; a
    function of the rank gives them for each input), each kept entry scaled by
    ``kept_scale(p)``.

    Checks, on the multi-dimensional ``shapes``: p = 0 returns x; p = 1 zeros, no NaN;
    at each p of ``ps`` the entries are 0 or x * kept_scale(p), the mask is constant
    along ``shared`` and independent along every other axis (neighbours and halves
    agree as often as independent draws do), the keep rate is 1 - p; two calls in a row
    draw different masks; dtype, shape and device follow the input. ``axes`` names the
    first axes in messages.
    """
    name = name or f.name
    shown_extra = "".join(f", {e!r}" for e in extra)

    def call(x, p, **kw):
        return f(x, p, *extra, **kw)

    x = _signed(shapes[0], seed=1)
    out = _as_tensor(call(x, 0.0), f.show(x, 0.0, *extra), shape=x.shape)
    _require(
        _close(out, x),
        f"at p=0 {name} must return its input unchanged, but the values differ"
        + (
            " (all zeros: is p the probability to drop, not to keep?)"
            if not out.any()
            else ""
        ),
    )
    out = _as_tensor(call(x, 1.0), f.show(x, 1.0, *extra), shape=x.shape)
    _require(
        not torch.isnan(out).any(),
        f"at p=1 your output has NaN: {nan_text}",
    )
    _require(
        not out.any(),
        f"at p=1 every entry must be dropped, but {name} kept some. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )
    _check_gradient_at_one(lambda t: call(t, 1.0), x, f.show(x, 1.0, *extra))

    for shape in shapes:
        shared_here = (
            set(shared(len(shape)))
            if callable(shared)
            else {s % len(shape) for s in shared}
        )
        for p in ps:
            x = _signed(shape, seed=2)
            shown = f.show(x, p, *extra)
            out = _as_tensor(call(x, p), shown, shape=shape, dtype=x.dtype)
            _require(not torch.isnan(out).any(), f"{shown} returned NaN")
            kept = out != 0
            scale = kept_scale(p)
            ratio = (out[kept] / x[kept]).double()
            if ratio.numel() and not torch.allclose(
                ratio, torch.full_like(ratio, scale), rtol=1e-5
            ):
                lo, hi = ratio.min().item(), ratio.max().item()
                why = (
                    _scale_hints(p, lo, kept_scale)
                    if math.isclose(lo, hi, rel_tol=1e-5)
                    else "Multiply the input itself by the mask: the kept entries "
                    "are x times the scale, whatever x is."
                )
                what = f" = x * {scale:.4g}" if scale != 1 else ""
                raise CheckFailed(
                    f"at p={p} the entries of {name}(x, p{shown_extra}) must be 0 or "
                    f"{kept_text}{what}, but the kept entries are x times {lo:.4g}"
                    + ("" if math.isclose(lo, hi, rel_tol=1e-5) else f" to {hi:.4g}")
                    + ". "
                    + why
                )
            first = kept
            for axis in sorted(shared_here):
                first = first.narrow(axis, 0, 1)
            _require(
                torch.equal(kept, first.expand_as(kept)),
                f"{name} dropped parts of what must be dropped whole. {hint}".strip(),
            )
            draws = first
            if draws.numel() < 500:
                continue
            free = [a for a in range(len(shape)) if a not in shared_here]
            axis = _shared_axis(draws, free, p)
            if axis is not None:
                if axis == 0:
                    lead = f"{name} gave every sample of the batch the same mask"
                elif axis < len(axes):
                    lead = (
                        f"{name} gave every {axes[axis]} (axis {axis}, size "
                        f"{shape[axis]}) the same draw"
                    )
                else:
                    lead = (
                        f"{name} gave every position along axis {axis} (size "
                        f"{shape[axis]}) the same draw"
                    )
                raise CheckFailed(
                    lead + ": the mask must be drawn separately along this axis, so "
                    "its noise shape has the axis size there, not 1"
                    + (
                        " (draw one random number per entry, torch.rand_like(X), "
                        "not one row broadcast over the batch, "
                        "torch.rand(X.shape[-1]))"
                        if not shared_here and axis == 0
                        else ""
                    )
                    + (f". {hint}" if hint else ".")
                )
            n_kept, n = int(draws.sum()), draws.numel()
            _require(
                _rate_ok(n_kept, n, 1 - p),
                f"at p={p} {name} kept {n_kept} of {n} mask entries, far from the "
                f"expected {(1 - p) * n:.0f}. Is p the probability to drop (PyTorch's "
                "convention), not to keep?",
            )

    # A NaN in x stays NaN where x is kept (x / (1 - p) is NaN): nan_to_num, or a
    # torch.where that replaces NaN, hides the NaN that a bug upstream produced.
    x = _signed(shapes[0], seed=4)
    x.view(-1)[::7] = math.nan
    out = _as_tensor(call(x, 0.5), f.show(x, 0.5, *extra), shape=x.shape)
    _require(
        bool(torch.isnan(out).any()),
        f"{name} turned every NaN of its input into a number: where an entry of x "
        "that is NaN is kept, the output x/(1-p) is NaN too. Do not hide NaN with "
        "torch.nan_to_num (a NaN upstream is a bug to see, not to zero).",
    )

    x = _signed(shapes[0], seed=3)

    def draw():
        return call(x, 0.5) != 0

    _check_fresh(draw, name)

    def run(t, attempt=False):
        if attempt:
            return f.attempt(t, 0.5, *extra)
        return _as_tensor(call(t, 0.5), f.show(t, 0.5, *extra), shape=t.shape)

    _check_dtypes_and_device(
        run,
        lambda dtype, device: torch.ones(shapes[0], dtype=dtype, device=device),
        name,
        meta=meta,
    )
