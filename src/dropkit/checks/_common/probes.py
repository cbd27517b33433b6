"""The statistics and the probes every mask check shares: keep rates and shared axes
(Hoeffding's bound at a false-alarm probability of 1e-9), a fresh mask on every call
without reseeding, dtype and device, a NaN-free gradient at p = 1, and the whole probe
of a dropout that multiplies its input by a random mask."""

import math

import torch

from dropkit.checks._common.answer import CheckFailed, _describe, _require
from dropkit.checks._common.values import _as_tensor, _close, _signed

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
