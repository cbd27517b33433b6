"""Exercise checks for Part III: dropout across devices.

Each check runs the learner's function for every rank of a simulated split in this one
process (a rank is an argument; "seeded alike" means ``torch.manual_seed`` with one seed
before each rank's call), so no processes are started. The learner's function is called
only through the shared wrapper (:class:`~dropkit.checks._common._Answer`), and every
check runs in a forked random state (:func:`~dropkit.checks._common._check`).
"""

import math
import operator

import numpy as np
import torch

from dropkit.checks._common import CheckFailed, _Answer, _check, _require
from dropkit.lowmem import lowmem_dropout
from dropkit.sharded import sharded_dropout

__all__ = [
    "check_global_index",
    "check_partial_dropout",
    "check_shard_layout",
    "check_tp_dropout",
]


def _int(value):
    """A Python, numpy or torch integer as an int; None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _reference_index(shape, global_shape, offset):
    full = torch.arange(math.prod(global_shape)).view(global_shape)
    return full[tuple(slice(o, o + s) for o, s in zip(offset, shape))]


@_check
def check_global_index(global_index):
    """Check ``global_index(shape, global_shape, offset)``: for a block of ``shape``
    that starts at ``offset`` in a tensor of ``global_shape``, an int64 tensor of
    ``shape`` holding each element's row-major index in the global tensor."""
    cases = [
        ((2, 3, 4), (5, 3, 8), (1, 0, 4)),
        ((4, 3), (4, 6), (0, 3)),
        ((3, 2), (3, 2), (0, 0)),
        ((1,), (7,), (6,)),
        ((2, 1, 5), (2, 4, 5), (0, 3, 0)),
        ((2, 2), (5, 7), (3, 1)),
    ]
    fn = _Answer(global_index, "global_index", ("shape", "global_shape", "offset"))
    for shape, global_shape, offset in cases:
        want = _reference_index(shape, global_shape, offset)
        got = fn(shape, global_shape, offset)
        _require(
            isinstance(got, torch.Tensor),
            f"global_index{(shape, global_shape, offset)} must return a tensor, but "
            f"returned {type(got).__name__}",
        )
        _require(
            tuple(got.shape) == tuple(shape),
            f"global_index{(shape, global_shape, offset)} must have the block's shape "
            f"{shape}, but has {tuple(got.shape)}",
        )
        _require(
            not got.is_floating_point(),
            f"global_index must return integers (int64), but returned {got.dtype}: "
            "indices of large tensors do not fit a float's mantissa",
        )
        got = got.to(torch.int64)
        if torch.equal(got, want):
            continue
        local = torch.arange(math.prod(shape)).view(shape)
        strides = [math.prod(global_shape[d + 1 :]) for d in range(len(shape))]
        first = sum(o * s for o, s in zip(offset, strides))
        col_major = _reference_index(shape[::-1], global_shape[::-1], offset[::-1])
        hint = ""
        if torch.equal(got, local):
            hint = (
                " These are the block's local indices: every block would get the "
                "same mask. Add the offset and use the global shape's strides."
            )
        elif torch.equal(got, local + sum(offset)):
            hint = (
                " You added the offsets to the local index without the strides: an "
                "offset along dim d moves the index by the product of the global "
                "sizes after d."
            )
        elif torch.equal(got - first, local):
            hint = (
                " The first element is right, the others are not: step through the "
                "block with the global shape's strides, not the block's own."
            )
        elif torch.equal(got, col_major.permute(*range(len(shape) - 1, -1, -1))):
            hint = " This is column-major order; torch's order is row-major."
        _require(
            False,
            f"global_index{(shape, global_shape, offset)} returned {got.tolist()}, "
            f"expected {want.tolist()}.{hint}",
        )


def _torch_layout(size, world, rank):
    """torch's Shard(d): chunks of ceil(size / world), the last ones short or empty."""
    chunk = -(-size // world)
    start = min(rank * chunk, size)
    return max(0, min(size, start + chunk) - start), start


@_check
def check_shard_layout(shard_layout):
    """Check ``shard_layout(size, world, rank)``: the (length, start) of rank
    ``rank``'s block when a dim of ``size`` is split over ``world`` ranks the way a
    DTensor's ``Shard(d)`` splits it (as ``torch.chunk`` does)."""
    cases = [(8, 2), (10, 4), (3, 4), (5, 4), (7, 3), (1, 1), (12, 5), (0, 2)]
    fn = _Answer(shard_layout, "shard_layout", ("size", "world", "rank"))
    for size, world in cases:
        got = []
        for rank in range(world):
            layout = fn(size, world, rank)
            ints = (
                [_int(v) for v in layout] if isinstance(layout, (tuple, list)) else []
            )
            _require(
                len(ints) == 2 and None not in ints,
                f"shard_layout{(size, world, rank)} must return two ints (length, "
                f"start), but returned {layout!r}",
            )
            got.append(tuple(ints))
        want = [_torch_layout(size, world, r) for r in range(world)]
        if got == want:
            continue
        lengths = [n for n, _ in got]
        hint = ""
        if got == [(s, n) for n, s in want]:
            hint = (
                " You returned (start, length); the order asked for is (length, start)."
            )
        elif any(n < 0 for n in lengths) or any(s > size for _, s in got):
            hint = (
                " A rank past the end must get an empty block (length 0, start = "
                "size), not a negative length or a start beyond the tensor."
            )
        elif sum(lengths) < size:
            hint = (
                f" Your blocks cover {sum(lengths)} of the {size} elements: with "
                "size // world per rank the remainder belongs to no rank."
            )
        elif sorted(lengths, reverse=True) == lengths and lengths != [
            n for n, _ in want
        ]:
            hint = (
                " Spreading the remainder over the first ranks is numpy's "
                "array_split (and torch.tensor_split); DTensor's Shard gives every "
                "rank ceil(size / world) until the elements run out."
            )
        elif lengths[-1] > lengths[0]:
            hint = (
                " Giving the last rank the remainder is not torch's split: every "
                "rank gets ceil(size / world) until the elements run out."
            )
        _require(
            False,
            f"size {size} over {world} ranks: you gave (length, start) {got}, "
            f"torch's Shard gives {want}.{hint}",
        )


def _masks_of(fn, x, p, world, sharded, seed):
    """The learner's outputs for every rank, each rank seeded alike with ``seed``."""
    outs = []
    for rank in range(world):
        part = x.chunk(world, -1)[rank] if sharded else x
        torch.manual_seed(seed)
        out = fn(part.clone(), p, rank, world, sharded)
        _require(
            isinstance(out, torch.Tensor) and out.shape == part.shape,
            f"{fn.name} must return a tensor shaped like its input "
            f"{tuple(part.shape)}, but returned "
            f"{getattr(out, 'shape', type(out).__name__)}",
        )
        _require(
            out.dtype == part.dtype,
            f"{fn.name} changed the dtype from {part.dtype} to {out.dtype}",
        )
        outs.append(out)
    return outs


def _as_shards(copies, x, p, world, seed):
    """Whether each rank's copy was dropped as rank r's shard of a tensor ``world``
    times as wide (offset r * width in the last dim)."""
    width = x.shape[-1]
    for rank, copy in enumerate(copies):
        torch.manual_seed(seed)
        shard = sharded_dropout(
            torch.ones_like(x),
            p,
            global_shape=(*x.shape[:-1], width * world),
            offset=(0,) * (x.dim() - 1) + (rank * width,),
            compile=False,
        )
        if not torch.equal(copy != 0, shard != 0):
            return False
    return True


@_check
def check_tp_dropout(tp_dropout):
    """Check ``tp_dropout(x, p, rank, world, sharded)``: the dropout of rank ``rank``'s
    piece ``x`` of an activation of tensor parallelism over ``world`` ranks. With
    ``sharded=True``, ``x`` is the rank's block of the activation split evenly along
    its last dim; with ``sharded=False`` it is the rank's copy of a replicated
    activation. Every rank is seeded alike before its call; the pieces must be the
    slices (or the copies) of ``lowmem_dropout`` of the whole activation under that
    seed."""
    name = "tp_dropout"
    fn = _Answer(tp_dropout, name, ("x", "p", "rank", "world", "sharded"))
    cases = [(0.5, (2, 3, 8), 2), (0.3, (4, 12), 4), (0.7, (3, 6), 3)]
    for i, (p, shape, world) in enumerate(cases):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(7))
        torch.manual_seed(11)
        want = lowmem_dropout(x, p, compile=False)
        copies = _masks_of(fn, x, p, world, False, seed=11)
        shards = _masks_of(fn, x, p, world, True, seed=11)
        where = f"(p={p}, {world} ranks)"
        if not all(torch.equal(c != 0, copies[0] != 0) for c in copies):
            hint = (
                "Every rank is seeded alike; draw from that stream, without a seed "
                "of your own per rank."
            )
            if _as_shards(copies, x, p, world, seed=11):
                hint = (
                    "You dropped it as if it were a shard: a replicated activation is "
                    "the whole tensor on every rank, so its global shape is its own "
                    "shape and its offset 0."
                )
            raise CheckFailed(
                f"the replicated activation got different masks on different ranks "
                f"{where}: its copies stop being copies. {hint}"
            )
        if i == 0:
            again = _masks_of(fn, x, p, world, True, seed=12)
            _require(
                not all(torch.equal(a, b) for a, b in zip(shards, again)),
                "your masks do not change when the ranks' seed changes: do you "
                "reseed inside tp_dropout? The key must come from torch's stream, "
                "as the ranks seeded it.",
            )
        _require(
            not all(torch.equal(s != 0, shards[0] != 0) for s in shards),
            f"every shard of the sharded activation got the same mask {where}: "
            "computed on local indices (F.dropout, or lowmem_dropout of the shard "
            "alone), each shard repeats the others. Use the global shape and the "
            "shard's offset.",
        )
        pieces = (("replicated", copies[0]), ("sharded", torch.cat(shards, -1)))
        for what, got in pieces:
            _require(
                torch.equal(got != 0, want != 0),
                f"the {what} activation's mask {where} is not (the slices of) "
                "lowmem_dropout's mask of the whole activation under the ranks' "
                "seed: for a shard, use the global shape and the offset rank * "
                "width in the last dim; draw no seed of your own.",
            )
            _require(
                torch.allclose(got, want),
                f"the kept entries of the {what} activation must be x times "
                "lowmem_dropout's scale (2**16 / (2**16 - T), about 1 / (1 - p)) "
                f"{where}, but the values differ from lowmem_dropout's",
            )
    x = torch.ones(2, 8)
    for sharded in (False, True):
        outs = _masks_of(fn, x, 0.0, 2, sharded, seed=3)
        pieces = x.chunk(2, -1) if sharded else [x, x]
        _require(
            all(torch.equal(o, q) for o, q in zip(outs, pieces)),
            "at p=0 tp_dropout must return its input unchanged",
        )


@_check
def check_partial_dropout(partial_dropout):
    """Check ``partial_dropout(x, p, rank, world)``: the dropout of rank ``rank``'s
    partial value ``x`` of a tensor pending a sum over ``world`` ranks (a DTensor's
    ``Partial()``), applied before the sum. Every rank is seeded alike before its
    call; the sum of the ranks' results must equal ``lowmem_dropout`` of the sum of
    their inputs under that seed."""
    name = "partial_dropout"
    fn = _Answer(partial_dropout, name, ("x", "p", "rank", "world"))
    for p, shape, world in [(0.5, (4, 6), 2), (0.3, (3, 5), 4), (0.8, (8,), 3)]:
        gen = torch.Generator().manual_seed(5)
        parts = [torch.randn(shape, generator=gen) for _ in range(world)]
        outs = []
        for rank, part in enumerate(parts):
            torch.manual_seed(13)
            out = fn(part.clone(), p, rank, world)
            _require(
                isinstance(out, torch.Tensor) and out.shape == part.shape,
                f"{name} must return a tensor shaped like its input {shape}, but "
                f"returned {getattr(out, 'shape', type(out).__name__)}",
            )
            outs.append(out)
        torch.manual_seed(13)
        want = lowmem_dropout(sum(parts), p, compile=False)
        got = sum(outs)
        if torch.allclose(got, want, atol=1e-5):
            continue
        masks = [o != 0 for o in outs]
        same = all(torch.equal(m, masks[0]) for m in masks)
        unchanged = [torch.equal(o, q) for o, q in zip(outs, parts)]
        hint = ""
        if any(unchanged) and not all(unchanged):
            hint = (
                " Some ranks returned their part unchanged: every rank must mask its "
                "part, since the sum carries every rank's contribution."
            )
        elif not same:
            hint = (
                " The ranks used different masks: the sum of differently masked "
                "parts is not a masked sum. Seeded alike, draw one mask."
            )
        elif torch.equal(got != 0, want != 0):
            hint = (
                " The mask is right, the scale is not: each part is scaled as "
                "lowmem_dropout scales the whole (about 1 / (1 - p)), not by 1 / "
                "world."
            )
        else:
            hint = " The mask is not lowmem_dropout's mask of the whole tensor."
        _require(
            False,
            f"the sum of your {world} ranks' results is not lowmem_dropout of the "
            f"sum (p={p}, shape {shape}).{hint}",
        )
