"""sharded_dropout in one process: every block of a tensor draws its slice of
lowmem_dropout's mask of the whole tensor (the multi-process tests, with DTensors and
real ranks, are in test_distributed.py)."""

import warnings

import numpy as np
import pytest
import torch
from torch.utils.checkpoint import checkpoint

from dropkit import ShardedDropout, lowmem_dropout, sharded_dropout
from dropkit.sharded import _kernels


def blocks_of(x, dim, pieces):
    """x split along dim as torch.chunk splits it, with each block's offset."""
    start = 0
    for block in x.chunk(pieces, dim):
        offset = [0] * x.dim()
        offset[dim] = start
        start += block.shape[dim]
        yield block, offset


def sharded_blocks(x, p, dim, pieces, seed=0, **kwargs):
    outs = []
    for block, offset in blocks_of(x, dim, pieces):
        torch.manual_seed(seed)
        outs.append(
            sharded_dropout(
                block, p, global_shape=x.shape, offset=offset, compile=False, **kwargs
            )
        )
    return torch.cat(outs, dim)


class TestSlicesOfOneMask:
    @pytest.mark.parametrize("p", [0.001, 0.3, 0.5, 0.9, 0.999])
    @pytest.mark.parametrize("dim,pieces", [(0, 2), (1, 4), (2, 3), (1, 1)])
    def test_blocks_are_slices_of_lowmem_mask(self, p, dim, pieces):
        x = torch.randn(6, 10, 7)
        torch.manual_seed(0)
        want = lowmem_dropout(x, p, compile=False)
        assert torch.equal(sharded_blocks(x, p, dim, pieces), want), (
            f"blocks of dim {dim} in {pieces} differ from lowmem_dropout at p={p}"
        )

    def test_uneven_and_empty_blocks(self):
        x = torch.randn(3, 10)
        torch.manual_seed(1)
        want = lowmem_dropout(x, 0.5, compile=False)
        # torch.chunk splits 10 into 3, 3, 3, 1; a block of zero rows is allowed too
        assert torch.equal(sharded_blocks(x, 0.5, 1, 4, seed=1), want)
        torch.manual_seed(1)
        empty = sharded_dropout(x[:0], 0.5, global_shape=(3, 10), offset=(3, 0))
        assert empty.shape == (0, 10)

    def test_a_block_inside_both_dims(self):
        x = torch.randn(9, 11)
        torch.manual_seed(2)
        want = lowmem_dropout(x, 0.4, compile=False)[2:7, 3:8]
        torch.manual_seed(2)
        got = sharded_dropout(
            x[2:7, 3:8], 0.4, global_shape=x.shape, offset=(2, 3), compile=False
        )
        assert torch.equal(got, want)

    def test_whole_tensor_is_lowmem_dropout(self):
        x = torch.randn(5, 13)
        torch.manual_seed(3)
        want = lowmem_dropout(x, 0.6, compile=False)
        torch.manual_seed(3)
        assert torch.equal(sharded_dropout(x, 0.6, compile=False), want)

    def test_draws_one_key_like_lowmem(self):
        """The same consumption of torch's stream as lowmem_dropout, at every p, so
        that the layers after it draw the same numbers either way."""
        for p in (0.0, 0.5, 1.0):
            torch.manual_seed(4)
            lowmem_dropout(torch.ones(3), p, compile=False)
            after_lowmem = torch.get_rng_state()
            torch.manual_seed(4)
            sharded_dropout(torch.ones(3), p, compile=False)
            assert torch.equal(torch.get_rng_state(), after_lowmem), f"p={p}"

    def test_generator(self):
        x = torch.ones(4, 8)
        g = torch.Generator().manual_seed(5)
        want = lowmem_dropout(x, 0.5, generator=g, compile=False)
        g = torch.Generator().manual_seed(5)
        got = sharded_dropout(
            x[:, 4:],
            0.5,
            global_shape=(4, 8),
            offset=(0, 4),
            generator=g,
            compile=False,
        )
        assert torch.equal(got, want[:, 4:])


class TestRows:
    """rows=: each row's global index, for shards whose rows are not one block (the
    interleaved split of torch's DistributedSampler)."""

    @pytest.mark.parametrize("rows", [[6, 1, 3], [0, 2, 4, 6], [7], [2, 2]])
    def test_rows_are_the_global_rows(self, rows):
        x = torch.randn(8, 5)
        torch.manual_seed(0)
        want = lowmem_dropout(x, 0.5, compile=False)[rows]
        torch.manual_seed(0)
        got = sharded_dropout(
            x[rows], 0.5, global_shape=(8, 5), rows=rows, compile=False
        )
        assert torch.equal(got, want)

    @pytest.mark.parametrize(
        "as_rows",
        [
            lambda r: r,
            lambda r: np.array(r),
            lambda r: torch.tensor(r, dtype=torch.int32),
            lambda r: tuple(np.int64(i) for i in r),
        ],
        ids=["list", "numpy", "int32 tensor", "numpy ints"],
    )
    def test_with_an_offset_in_another_dim(self, as_rows):
        x = torch.randn(6, 7)
        rows = [5, 0, 3]
        torch.manual_seed(1)
        want = lowmem_dropout(x, 0.3, compile=False)[rows][:, 2:6]
        torch.manual_seed(1)
        got = sharded_dropout(
            x[rows][:, 2:6],
            0.3,
            global_shape=(6, 7),
            offset=(0, 2),
            rows=as_rows(rows),
            compile=False,
        )
        assert torch.equal(got, want)

    def test_layouts(self):
        x = torch.randn(6, 4, 3, 5)
        rows = [4, 1]
        torch.manual_seed(2)
        want = lowmem_dropout(x, 0.5, compile=False)[rows]
        block = x[rows].contiguous(memory_format=torch.channels_last)
        torch.manual_seed(2)
        got = sharded_dropout(
            block, 0.5, global_shape=x.shape, rows=rows, compile=False
        )
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(got, want)
        y = torch.randn(8, 6)
        torch.manual_seed(3)
        want = lowmem_dropout(y, 0.5, compile=False)[[7, 2, 5]]
        block = y[[7, 2, 5]].t().contiguous().t()  # column-major
        torch.manual_seed(3)
        got = sharded_dropout(block, 0.5, global_shape=(8, 6), rows=[7, 2, 5])
        assert torch.equal(got, want)

    def test_compiled_and_backward(self):
        x = torch.randn(16, 40, requires_grad=True)
        rows = list(range(1, 32, 2))
        torch.manual_seed(4)
        eager = sharded_dropout(x, 0.5, global_shape=(32, 40), rows=rows, compile=False)
        torch.manual_seed(4)
        compiled = sharded_dropout(x, 0.5, global_shape=(32, 40), rows=rows)
        assert torch.equal(compiled, eager)
        compiled.backward(torch.ones_like(compiled))
        assert torch.equal(x.grad, (eager != 0).float() * 2.0)

    def test_an_empty_shard(self):
        got = sharded_dropout(torch.ones(0, 3), 0.5, global_shape=(4, 3), rows=[])
        assert got.shape == (0, 3)

    @pytest.mark.parametrize(
        "kwargs,error,match",
        [
            ({"rows": [0.0, 1.0]}, TypeError, "1-D sequence of ints.*float"),
            ({"rows": [True, False]}, TypeError, "1-D sequence of ints.*bool"),
            ({"rows": [[0], [1]]}, TypeError, "2-dim"),
            ({"rows": 3}, TypeError, "0-dim"),
            ({"rows": ["a", "b"]}, TypeError, "1-D sequence of ints, but got"),
            ({"rows": [0, 1, 2]}, ValueError, r"one index per entry.*\(2\).*holds 3"),
            ({"rows": [0, 8]}, ValueError, r"lie in \[0, 8\).*from 0 to 8"),
            ({"rows": [-1, 0]}, ValueError, "from -1 to 0"),
            (
                {"rows": [0, 1], "offset": (1, 0)},
                ValueError,
                r"in place of offset\[0\].*offset=\(1, 0\)",
            ),
        ],
    )
    def test_bad_rows(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            sharded_dropout(torch.ones(2, 3), 0.5, global_shape=(8, 3), **kwargs)

    def test_rows_of_a_0_dim_tensor(self):
        with pytest.raises(ValueError, match="at least one dim"):
            sharded_dropout(torch.tensor(1.0), 0.5, rows=[0])


class TestDtypesAndLayouts:
    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
    def test_same_mask_in_every_dtype(self, dtype):
        x = torch.rand(4, 6) + 0.5
        torch.manual_seed(0)
        want = sharded_dropout(x[:, 3:], 0.5, global_shape=(4, 6), offset=(0, 3))
        torch.manual_seed(0)
        got = sharded_dropout(
            x[:, 3:].to(dtype), 0.5, global_shape=(4, 6), offset=(0, 3), compile=False
        )
        assert got.dtype == dtype
        assert torch.equal(got != 0, want != 0)

    def test_channels_last_keeps_its_layout_and_mask(self):
        x = torch.randn(4, 6, 3, 5)
        block = x[2:].contiguous(memory_format=torch.channels_last)
        torch.manual_seed(0)
        want = lowmem_dropout(x, 0.5, compile=False)[2:]
        torch.manual_seed(0)
        got = sharded_dropout(
            block, 0.5, global_shape=x.shape, offset=(2, 0, 0, 0), compile=False
        )
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(got, want)

    def test_transposed_and_sliced_blocks(self):
        x = torch.randn(8, 6)
        torch.manual_seed(1)
        want = lowmem_dropout(x, 0.5, compile=False)[:, 2:5]
        for block in (x[:, 2:5], x.t().contiguous().t()[:, 2:5]):
            torch.manual_seed(1)
            got = sharded_dropout(
                block, 0.5, global_shape=(8, 6), offset=(0, 2), compile=False
            )
            assert torch.equal(got, want)


class TestAutograd:
    def test_gradient_is_the_mask(self):
        x = torch.randn(6, 4, requires_grad=True)
        torch.manual_seed(0)
        y = sharded_dropout(x, 0.5, global_shape=(12, 4), offset=(6, 0), compile=False)
        y.backward(torch.ones_like(y))
        kept = (y != 0).float()
        assert torch.equal(x.grad, kept * 2.0)

    def test_saves_no_tensor_for_backward(self):
        x = torch.randn(64, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            sharded_dropout(x, 0.5, global_shape=(128,), offset=(64,), compile=False)
        assert saved == [], f"saved {[tuple(t.shape) for t in saved]}"

    @pytest.mark.parametrize("reentrant", [True, False])
    def test_exact_under_checkpoint(self, reentrant):
        torch.manual_seed(0)
        layer = torch.nn.Linear(8, 8)
        x = torch.randn(4, 8, requires_grad=True)

        def block(t):
            h = sharded_dropout(
                layer(t), 0.5, global_shape=(8, 8), offset=(4, 0), compile=False
            )
            return h.relu().sum(1)

        grads = []
        for wrap in (False, True):
            layer.zero_grad()
            torch.manual_seed(1)
            out = checkpoint(block, x, use_reentrant=reentrant) if wrap else block(x)
            out.sum().backward()
            grads.append([p.grad.clone() for p in layer.parameters()])
        assert all(torch.equal(a, b) for a, b in zip(*grads))

    def test_a_generator_of_its_own_is_refused_under_checkpoint(self):
        """checkpoint replays torch's default generators only: a generator of the
        caller's own would give the recomputation another mask."""
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(4, 8, requires_grad=True)
        layer = torch.nn.Linear(8, 2)  # saves its input: backward recomputes it

        def block(t):
            return layer(sharded_dropout(t, 0.5, generator=gen, compile=False)).sum()

        out = checkpoint(block, x, use_reentrant=False)
        with pytest.raises(RuntimeError, match="sharded_dropout was called with gen"):
            out.backward()

    def test_p_one_gives_zeros_and_zero_gradient(self):
        x = torch.randn(3, 4, requires_grad=True)
        y = sharded_dropout(x, 1.0, global_shape=(6, 4), offset=(3, 0))
        y.sum().backward()
        assert torch.equal(y, torch.zeros_like(y))
        assert torch.equal(x.grad, torch.zeros_like(x))

    def test_p_zero_and_eval_return_the_input(self):
        x = torch.randn(3, 4)
        assert sharded_dropout(x, 0.0, global_shape=(6, 4), offset=(3, 0)) is x
        assert sharded_dropout(x, 0.5, False, global_shape=(6, 4), offset=(3, 0)) is x


def test_compiled_kernel_equals_eager():
    """Where torch.compile builds the kernel, its masks are the eager ones (the
    first compiled call per device and dtype is checked against eager mode; a
    failure falls back with a warning)."""
    x = torch.randn(16, 40)
    torch.manual_seed(0)
    eager = sharded_dropout(
        x, 0.5, global_shape=(32, 40), offset=(16, 0), compile=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the second call runs the kernel kept after the check
            torch.manual_seed(0)
            compiled = sharded_dropout(x, 0.5, global_shape=(32, 40), offset=(16, 0))
            assert torch.equal(compiled, eager)
    fell_back = [w for w in caught if "torch.compile failed" in str(w.message)]
    assert (_kernels.get(("cpu", torch.float32)) is None) == bool(fell_back)


class TestBadInput:
    @pytest.mark.parametrize(
        "kwargs,match",
        [
            ({"global_shape": (6, 10)}, r"global_shape must be 3 ints.*\(6, 10\)"),
            ({"offset": (0, -1, 0)}, r"offset must be 3 ints.*\(0, -1, 0\)"),
            ({"global_shape": (6, 10.0, 7)}, r"global_shape must be 3 ints"),
            (
                {"global_shape": (6, 10, 7), "offset": (0, 0, 1)},
                r"does not fit in the global shape \(6, 10, 7\).*dim 2.*\[1, 8\)",
            ),
            ({"global_shape": (5, 10, 7)}, r"dim 0 it spans \[0, 6\), beyond 5"),
        ],
    )
    def test_a_block_that_does_not_fit(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            sharded_dropout(torch.randn(6, 10, 7), 0.5, **kwargs)

    def test_numpy_integers_are_ints(self):
        x = torch.randn(2, 3)
        torch.manual_seed(0)
        want = sharded_dropout(x, 0.5, global_shape=(4, 3), offset=(2, 0))
        torch.manual_seed(0)
        got = sharded_dropout(
            x, 0.5, global_shape=np.array([4, 3]), offset=(np.int64(2), 0)
        )
        assert torch.equal(got, want)

    @pytest.mark.parametrize("p", [1e-9, 2**-17, 1 - 2**-17, 1 - 1e-9])
    def test_a_p_the_16_bit_threshold_cannot_draw(self, p):
        """Refused, as lowmem_dropout refuses it, rather than dropped at another
        rate (T = round(p * 2**16) would be 0 or 2**16)."""
        for training in (True, False):
            with pytest.raises(ValueError, match=r"T = round\(p \* 2\*\*16\)"):
                sharded_dropout(torch.ones(4), p, training)
        with pytest.raises(ValueError, match="ShardedDropout compares"):
            ShardedDropout(p)

    @pytest.mark.parametrize("p", [2**-16, 1 - 2**-16])
    def test_the_smallest_and_largest_p_it_draws(self, p):
        torch.manual_seed(0)
        want = lowmem_dropout(torch.ones(64), p, compile=False)
        torch.manual_seed(0)
        assert torch.equal(sharded_dropout(torch.ones(64), p, compile=False), want)

    def test_not_a_sequence(self):
        with pytest.raises(TypeError, match="global_shape must be a sequence"):
            sharded_dropout(torch.randn(3), 0.5, global_shape=3)

    @pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), True, "0.5"])
    def test_p_outside_0_1(self, p):
        with pytest.raises(ValueError, match="between 0 and 1"):
            sharded_dropout(torch.randn(3), p, training=False)

    def test_integer_tensor(self):
        with pytest.raises(TypeError, match="floating-point"):
            sharded_dropout(torch.ones(3, dtype=torch.int64), 0.5)

    def test_generator_type(self):
        with pytest.raises(TypeError, match="sharded_dropout: generator must be a"):
            sharded_dropout(torch.ones(3), 0.5, generator=0)


class TestModule:
    def test_extra_repr_and_eval(self):
        layer = ShardedDropout(0.25, batch_dim=0)
        assert repr(layer) == "ShardedDropout(p=0.25, batch_dim=0)"
        assert repr(ShardedDropout(0.5)) == "ShardedDropout(p=0.5)"
        x = torch.randn(4, 3)
        assert layer.eval()(x) is x

    def test_without_a_process_group_it_is_the_whole_batch(self):
        x = torch.randn(4, 6)
        torch.manual_seed(0)
        want = lowmem_dropout(x, 0.5, compile=False)
        torch.manual_seed(0)
        assert torch.equal(ShardedDropout(0.5, batch_dim=0, compile=False)(x), want)

    def test_interleaved_without_a_process_group_is_the_whole_batch(self):
        x = torch.randn(4, 6)
        torch.manual_seed(0)
        want = lowmem_dropout(x, 0.5, compile=False)
        layer = ShardedDropout(0.5, batch_dim=0, split="interleaved", compile=False)
        assert repr(layer) == "ShardedDropout(p=0.5, batch_dim=0, split='interleaved')"
        torch.manual_seed(0)
        assert torch.equal(layer(x), want)
        torch.manual_seed(0)  # along another dim
        layer = ShardedDropout(0.5, batch_dim=1, split="interleaved", compile=False)
        assert torch.equal(layer(x), want)

    @pytest.mark.parametrize("batch_dim", [2, -3])
    def test_a_batch_dim_the_input_lacks(self, batch_dim):
        with pytest.raises(ValueError, match=f"batch_dim={batch_dim} is not a dim"):
            ShardedDropout(0.5, batch_dim=batch_dim)(torch.ones(3, 4))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="between 0 and 1"):
            ShardedDropout(2.0)
        with pytest.raises(ValueError, match="split must be one of"):
            ShardedDropout(0.5, batch_dim=0, split="strided")
        with pytest.raises(TypeError, match="batch_dim must be an int or None"):
            ShardedDropout(0.5, batch_dim=0.0)
