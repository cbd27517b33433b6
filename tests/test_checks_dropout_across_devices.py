"""Part III's exercise checks: a right answer passes, an unusual right answer passes,
and the usual wrong answers fail, each with its own hint."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dropkit import lowmem_dropout, sharded_dropout
from dropkit.checks import (
    CheckFailed,
    check_global_index,
    check_partial_dropout,
    check_shard_layout,
    check_tp_dropout,
)


class TestCheckGlobalIndex:
    @staticmethod
    def right(shape, global_shape, offset):
        index, stride = torch.zeros(shape, dtype=torch.int64), 1
        for d in reversed(range(len(shape))):
            view = [-1 if e == d else 1 for e in range(len(shape))]
            index += (torch.arange(shape[d]) + offset[d]).view(view) * stride
            stride *= global_shape[d]
        return index

    @staticmethod
    def unusual(shape, global_shape, offset):
        # numpy's ravel_multi_index over the block's global coordinates
        grids = np.meshgrid(
            *[np.arange(o, o + n) for o, n in zip(offset, shape)], indexing="ij"
        )
        return torch.from_numpy(np.ravel_multi_index(grids, global_shape))

    def test_right_answers_pass(self, capsys):
        check_global_index(self.right)
        check_global_index(self.unusual)
        assert capsys.readouterr().out.count("all checks passed") == 2

    @pytest.mark.parametrize(
        "wrong,hint",
        [
            (lambda s, g, o: torch.arange(math.prod(s)).view(s), "local indices"),
            (
                lambda s, g, o: torch.arange(math.prod(s)).view(s) + sum(o),
                "without the strides",
            ),
            (
                lambda s, g, o: (
                    TestCheckGlobalIndex.right(s, s, (0,) * len(s))
                    + TestCheckGlobalIndex.right((1,) * len(s), g, o)
                ),
                "block's own",
            ),
            (
                lambda s, g, o: TestCheckGlobalIndex.right(
                    s[::-1], g[::-1], o[::-1]
                ).permute(*range(len(s) - 1, -1, -1)),
                "column-major",
            ),
            (lambda s, g, o: TestCheckGlobalIndex.right(s, g, o).float(), "integers"),
            (lambda s, g, o: TestCheckGlobalIndex.right(s, g, o).tolist(), "a tensor"),
        ],
        ids=["local", "no strides", "block strides", "column-major", "float", "list"],
    )
    def test_wrong_answers_fail_with_their_hint(self, wrong, hint):
        with pytest.raises(CheckFailed, match=hint):
            check_global_index(wrong)


class TestCheckShardLayout:
    @staticmethod
    def right(size, world, rank):
        chunk = -(-size // world)
        start = min(rank * chunk, size)
        return min(chunk, size - start), start

    @staticmethod
    def unusual(size, world, rank):
        # len() of a range sliced the way torch.chunk cuts
        chunk = -(-size // world) if size else 1
        block = range(size)[rank * chunk : (rank + 1) * chunk]
        return len(block), block.start if block else size

    def test_right_answers_pass(self, capsys):
        check_shard_layout(self.right)
        check_shard_layout(self.unusual)
        assert capsys.readouterr().out.count("all checks passed") == 2

    def test_numpy_and_torch_integers_pass(self, capsys):
        check_shard_layout(
            lambda n, w, r: tuple(np.int64(v) for v in self.right(n, w, r))
        )
        check_shard_layout(
            lambda n, w, r: [torch.tensor(v) for v in self.right(n, w, r)]
        )
        assert capsys.readouterr().out.count("all checks passed") == 2

    def test_reference_is_torchs_shard(self):
        from torch.distributed.tensor import Shard

        for size in range(0, 14):
            for world in range(1, 6):
                for rank in range(world):
                    got = Shard(0)._local_shard_size_and_offset(size, world, rank)
                    assert self.right(size, world, rank) == tuple(got), (size, world)

    @pytest.mark.parametrize(
        "wrong,hint",
        [
            (lambda n, w, r: (n // w, r * (n // w)), "belongs to no rank"),
            (
                lambda n, w, r: (
                    len(np.array_split(np.arange(n), w)[r]),
                    int(sum(len(a) for a in np.array_split(np.arange(n), w)[:r])),
                ),
                "array_split",
            ),
            (
                lambda n, w, r: (
                    (-(-n // w), r * -(-n // w))
                    if r < w - 1
                    else (n - r * -(-n // w), r * -(-n // w))
                ),
                "negative length",
            ),
            (
                lambda n, w, r: (n // w + (n % w if r == w - 1 else 0), r * (n // w)),
                "last rank the remainder",
            ),
            (lambda n, w, r: [n // w], "two ints"),
            (lambda n, w, r: (float(n // w), 0), "two ints"),
            (lambda n, w, r: (True, 0), "two ints"),
            (
                lambda n, w, r: TestCheckShardLayout.right(n, w, r)[::-1],
                r"You returned \(start, length\)",
            ),
        ],
        ids=[
            "floor",
            "array_split",
            "unclamped",
            "remainder last",
            "one value",
            "a float",
            "a bool",
            "swapped",
        ],
    )
    def test_wrong_answers_fail_with_their_hint(self, wrong, hint):
        with pytest.raises(CheckFailed, match=hint):
            check_shard_layout(wrong)


def _tp_right(x, p, rank, world, sharded):
    if not sharded:
        return sharded_dropout(x, p, compile=False)
    global_shape = (*x.shape[:-1], x.shape[-1] * world)
    offset = (0,) * (x.dim() - 1) + (rank * x.shape[-1],)
    return sharded_dropout(
        x, p, global_shape=global_shape, offset=offset, compile=False
    )


def _tp_whole_then_slice(x, p, rank, world, sharded):
    # Correct, if wasteful: drop a tensor of the whole activation, keep the slice.
    if not sharded:
        return lowmem_dropout(x, p, compile=False)
    ones = torch.ones(*x.shape[:-1], x.shape[-1] * world, dtype=x.dtype)
    width = x.shape[-1]
    return (
        x
        * lowmem_dropout(ones, p, compile=False)[..., rank * width : (rank + 1) * width]
    )


def _tp_per_rank_seed(x, p, rank, world, sharded):
    torch.manual_seed(rank)
    return _tp_right(x, p, rank, world, sharded)


def _tp_reseed(x, p, rank, world, sharded):
    torch.manual_seed(0)
    return _tp_right(x, p, rank, world, sharded)


def _tp_replicated_as_shard(x, p, rank, world, sharded):
    # The replicated copy dropped as if it were rank's shard of a wider tensor.
    global_shape = (*x.shape[:-1], x.shape[-1] * world)
    offset = (0,) * (x.dim() - 1) + (rank * x.shape[-1],)
    return sharded_dropout(
        x, p, global_shape=global_shape, offset=offset, compile=False
    )


def _tp_wrong_dim(x, p, rank, world, sharded):
    if not sharded:
        return sharded_dropout(x, p, compile=False)
    global_shape = (x.shape[0] * world, *x.shape[1:])
    offset = (rank * x.shape[0],) + (0,) * (x.dim() - 1)
    return sharded_dropout(
        x, p, global_shape=global_shape, offset=offset, compile=False
    )


class TestCheckTpDropout:
    def test_right_answers_pass(self, capsys):
        check_tp_dropout(_tp_right)
        check_tp_dropout(_tp_whole_then_slice)
        assert capsys.readouterr().out.count("all checks passed") == 2

    @pytest.mark.parametrize(
        "wrong,hint",
        [
            (_tp_per_rank_seed, "different masks.*without a seed of your own"),
            (_tp_replicated_as_shard, "as if it were a shard.*offset 0"),
            (lambda x, p, r, w, s: F.dropout(x, p), "every shard"),
            (lambda x, p, r, w, s: lowmem_dropout(x, p, compile=False), "every shard"),
            (_tp_wrong_dim, "not \\(the slices of\\) lowmem_dropout's mask"),
            (_tp_reseed, "do not change when the ranks' seed changes"),
            (
                lambda x, p, r, w, s: _tp_right(x, p, r, w, s) * (1 - p),
                "x times lowmem_dropout's scale",
            ),
            (lambda x, p, r, w, s: _tp_right(x, p, r, w, s).double(), "dtype"),
        ],
        ids=[
            "per-rank seed",
            "replicated as a shard",
            "F.dropout",
            "local lowmem",
            "wrong dim",
            "reseed",
            "unscaled",
            "dtype",
        ],
    )
    def test_wrong_answers_fail_with_their_hint(self, wrong, hint):
        with pytest.raises(CheckFailed, match=hint):
            check_tp_dropout(wrong)


def _partial_mask_times(x, p, rank, world):
    # Correct and unusual: the mask as a tensor, multiplied in.
    return x * lowmem_dropout(torch.ones_like(x), p, compile=False)


class TestCheckPartialDropout:
    def test_right_answers_pass(self, capsys):
        check_partial_dropout(lambda x, p, r, w: sharded_dropout(x, p, compile=False))
        check_partial_dropout(_partial_mask_times)
        assert capsys.readouterr().out.count("all checks passed") == 2

    @pytest.mark.parametrize(
        "wrong,hint",
        [
            (
                lambda x, p, r, w: lowmem_dropout(x, p, compile=False) if r == 0 else x,
                "returned their part unchanged",
            ),
            (
                lambda x, p, r, w: (
                    torch.manual_seed(r),
                    lowmem_dropout(x, p, compile=False),
                )[1],
                "different masks",
            ),
            (
                lambda x, p, r, w: lowmem_dropout(x, p, compile=False) / w,
                "scale is not",
            ),
            (lambda x, p, r, w: F.dropout(x, p), "not lowmem_dropout's mask"),
            (lambda x, p, r, w: x.sum(), "shaped like its input"),
        ],
        ids=["rank 0 only", "per-rank seed", "divided by world", "F.dropout", "sum"],
    )
    def test_wrong_answers_fail_with_their_hint(self, wrong, hint):
        with pytest.raises(CheckFailed, match=hint):
            check_partial_dropout(wrong)


def _raises(*args):
    raise ZeroDivisionError("the learner's own bug")


@pytest.mark.parametrize(
    "check",
    [check_global_index, check_shard_layout, check_tp_dropout, check_partial_dropout],
)
def test_a_learner_function_that_raises_is_a_check_failure(check):
    """CheckFailed, naming the call and the learner's error, so that a solution
    cell's ``except CheckFailed`` catches it."""
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError: the learner's"):
        check(_raises)
