"""dropkit.lowmem: counter-based (Philox) dropout that saves nothing per element."""

import copy
import logging
import warnings

import pytest
import torch
from scipy.stats import binomtest, chisquare, norm, pearsonr
from torch.utils.checkpoint import checkpoint

import dropkit.lowmem as lowmem_module
from dropkit.drop import _DropoutBase
from dropkit.lowmem import (
    LowMemDropout,
    _constants,
    _halves,
    lowmem_dropout,
    philox4x32,
)

ALPHA = 1e-9
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def lowmem(x, p, **kw):
    kw.setdefault(
        "compile", False
    )  # eager: same values, no compile time; compiled tested below
    return lowmem_dropout(x, p, **kw)


def seeded(seed, x, p, **kw):
    torch.manual_seed(seed)
    return lowmem(x, p, **kw)


def decisions(key, n):
    """The 16-bit numbers that decide elements 0 ... n-1 of an n-element tensor under a
    key (two ints): lane l = i // q, position j = i % q, q = ceil(n / 8)."""
    k = tuple(torch.tensor(v, dtype=torch.int64) for v in key)
    return torch.stack(_halves(torch.arange((n + 7) // 8), k)).view(-1)[:n]


def threshold(p):
    return int(_constants(p, torch.float32, torch.device("cpu"))[0])


class TestPhilox:
    # Random123 1.14, examples/kat_vectors: "philox4x32 R" counter, key -> output.
    ZERO, ONES = ((0,) * 4, (0,) * 2), ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2)
    PI = ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0))
    KAT = [
        (10, *ZERO, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        (10, *ONES, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (10, *PI, (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
        (7, *ZERO, (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
        (7, *ONES, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
        (7, *PI, (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A)),
    ]

    @pytest.mark.parametrize("rounds,counter,key,expected", KAT)
    def test_known_answers(self, rounds, counter, key, expected):
        t = lambda v: tuple(torch.tensor(x, dtype=torch.int64) for x in v)  # noqa: E731
        out = philox4x32(t(counter), t(key), rounds)
        assert tuple(int(w) for w in out) == expected

    @pytest.mark.parametrize("case", [2, 5])
    def test_known_answers_compiled(self, case):
        rounds, counter, key, expected = self.KAT[case]
        t = lambda v: tuple(torch.tensor([x], dtype=torch.int64) for x in v)  # noqa: E731
        out = torch.compile(philox4x32)(t(counter), t(key), rounds)
        assert tuple(int(w) for w in out) == expected

    def test_halves_are_the_words_low_then_high(self):
        counter, key = torch.arange(5), (torch.tensor(7), torch.tensor(9))
        zero = torch.zeros((), dtype=torch.int64)
        words = philox4x32((counter, zero, zero, zero), key, 7)
        u = _halves(counter, key)
        for k, w in enumerate(words):
            assert torch.equal(u[2 * k], w & 0xFFFF)
            assert torch.equal(u[2 * k + 1], w >> 16)

    def test_key_and_counter_are_not_symmetric(self):
        # The old hash h(h(i) ^ h(seed)) gave mask(seed=a)[b] == mask(seed=b)[a].
        a = torch.arange(1, 257, dtype=torch.int64)
        zero = torch.zeros((), dtype=torch.int64)
        table = torch.stack(
            [philox4x32((a, zero, zero, zero), (k, zero))[0] for k in a]
        )
        off = ~torch.eye(256, dtype=torch.bool)
        assert int((table == table.t())[off].sum()) == 0


class TestSemantics:
    @pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match="but got"):
            lowmem(torch.ones(4), p)
        with pytest.raises(ValueError, match="but got"):
            lowmem(torch.ones(4), p, training=False)

    def test_bad_generator(self):
        with pytest.raises(
            TypeError, match="generator must be a torch.Generator or None, but got int"
        ):
            lowmem(torch.ones(4), 0.5, generator=3)

    def test_non_float(self):
        with pytest.raises(TypeError, match="floating-point"):
            lowmem(torch.arange(4), 0.5)

    @pytest.mark.parametrize("p", [0.0, 0.5])
    def test_off_returns_input_and_draws_nothing(self, p):
        x = torch.randn(8)
        state = torch.get_rng_state()
        assert lowmem(x, p, training=False) is x
        assert lowmem(x, 0.0) is x
        assert torch.equal(torch.get_rng_state(), state)

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    def test_p1_zeros_and_zero_grad(self, dtype):
        x = torch.randn(16, dtype=dtype, requires_grad=True)
        y = lowmem(x, 1.0)
        assert torch.equal(y, torch.zeros_like(y))
        y.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    def test_values_dtype_and_same_mask_for_every_dtype(self, dtype):
        y = seeded(0, torch.ones(1000, dtype=dtype), 0.5)
        assert y.dtype == dtype and set(y.unique().tolist()) == {0.0, 2.0}
        assert torch.equal(y != 0, seeded(0, torch.ones(1000), 0.5) != 0)

    @pytest.mark.parametrize("compile", [False, True])
    @pytest.mark.parametrize(
        "make",
        [
            lambda: torch.ones(3, 8),  # eight lanes of 3
            lambda: torch.ones(3, 10),  # q = 4, a short last lane (padded)
            lambda: torch.ones(5),  # q = 1, three empty lanes
            lambda: torch.ones(16, 3, 2, 2).to(memory_format=torch.channels_last),
            lambda: torch.ones(6, 3, 2, 2).to(memory_format=torch.channels_last),
            lambda: torch.ones(10, 3).t(),  # transposed: the per-element path
        ],
        ids=["lanes", "padded", "tiny", "slabs", "per-element", "transposed"],
    )
    def test_decision_is_lane_number_of_logical_index(self, make, compile):
        x = make()
        torch.manual_seed(5)
        key = torch.randint(0, 1 << 32, (2,), dtype=torch.int64)
        expected = decisions(key.tolist(), x.numel()) >= threshold(0.3)
        y = seeded(5, x, 0.3, compile=compile)
        assert y.stride() == x.stride()
        assert torch.equal(y != 0, expected.view(x.shape))

    def test_threshold_is_p_in_16_bits(self):
        assert threshold(0.3) == round(0.3 * 2**16) == 19661
        assert threshold(2**-16) == 1 and threshold(1 - 2**-16) == 2**16 - 1
        n = 1 << 20
        kept = int((seeded(0, torch.ones(n), 2**-16) != 0).sum())
        assert kept < n and binomtest(kept, n, 1 - 2**-16).pvalue > ALPHA

    # T = round(p * 2**16) would be 0 or 2**16: the mask could not drop at that rate
    @pytest.mark.parametrize("p", [1e-9, 1e-6, 2**-17, 1 - 2**-17, 1 - 1e-7])
    def test_p_outside_the_16_bit_range_is_refused_naming_p(self, p):
        for kw in ({}, {"training": False}):
            with pytest.raises(ValueError, match=f"but got p={p!r}.*dropkit.dropout"):
                lowmem(torch.ones(4), p, **kw)
        with pytest.raises(ValueError, match=f"but got p={p!r}"):
            LowMemDropout(p)

    @pytest.mark.parametrize("p", [2**-17 + 1e-9, 1 - 2**-17 - 1e-9, 0.3, 0.99999])
    def test_scale_is_the_inverse_of_the_keep_rate(self, p):
        t = threshold(p)
        scale = float(_constants(p, torch.float64, torch.device("cpu"))[1])
        assert 1 <= t <= 2**16 - 1 and scale == 2**16 / (2**16 - t)
        y = lowmem(torch.ones(64, dtype=torch.float64), p)
        assert set(y.unique().tolist()) <= {0.0, scale}

    def test_mean_equals_the_input_at_the_ends(self):
        # p = 0.99999 keeps with probability 2**-16; scaling by 1/(1-p) would give
        # E[y] = 1.53 x, 8 standard errors away on 2**24 elements.
        n, p = 1 << 24, 0.99999
        y = lowmem(torch.ones(n, dtype=torch.float64), p)
        scale = 2**16 / (2**16 - threshold(p))
        z = (y.mean().item() - 1) / ((scale - 1) / n) ** 0.5
        assert 2 * norm.sf(abs(z)) > ALPHA, f"mean {y.mean().item():.4f}, z = {z:.1f}"

    @pytest.mark.parametrize("compile", [False, True])
    @pytest.mark.parametrize("batch", [2, 8])  # per-element path, slabs
    def test_channels_last_kept_and_same_mask(self, compile, batch):
        x = (
            torch.randn(batch, 3, 4, 8)
            .to(memory_format=torch.channels_last)
            .requires_grad_()
        )
        y = seeded(1, x, 0.5, compile=compile)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(y, seeded(1, x.detach().contiguous(), 0.5))
        y.backward(torch.ones_like(y))
        assert x.grad.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(x.grad, (y.detach() != 0).float() * 2)

    def test_views_and_slices(self):
        x = torch.randn(6, 10)
        for view in (x.t(), x[:, ::3], x[1:4].t()):
            y = seeded(2, view, 0.5)
            assert y.shape == view.shape
            assert torch.equal(y, seeded(2, view.contiguous(), 0.5))
        assert seeded(2, x.t(), 0.5).stride() == x.t().stride()

    def test_gradient_is_mask_times_scale_and_nothing_per_element_saved(self):
        x = torch.randn(4096, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            y = lowmem(x, 0.25)
        assert saved == [], (
            f"saved {[(t.dtype, tuple(t.shape)) for t in saved]} for backward"
        )
        y.backward(torch.ones_like(y))
        assert torch.equal(x.grad, (y.detach() != 0).float() * torch.tensor(4 / 3))

    def test_gradcheck(self):
        x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)

        def f(t):
            torch.manual_seed(9)
            return lowmem(t, 0.4)

        assert torch.autograd.gradcheck(f, (x,))

    def test_empty_and_scalar(self):
        assert lowmem(torch.ones(0, 3), 0.5).shape == (0, 3)
        assert lowmem(torch.tensor(1.0), 0.5).shape == ()

    @pytest.mark.parametrize("shape", [(3, 1000), (7, 13)])
    def test_compiled_equals_eager(self, shape):
        x = torch.randn(shape, requires_grad=True)
        compiled = seeded(11, x, 0.3, compile=True)
        assert torch.equal(compiled, seeded(11, x, 0.3))
        compiled.sum().backward()
        scale = torch.tensor(2**16 / (2**16 - threshold(0.3)))
        assert torch.equal(x.grad, (compiled.detach() != 0).float() * scale)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
    def test_autocast(self, dtype):
        lin = torch.nn.Linear(8, 8)
        x = torch.randn(4, 8)
        with torch.autocast("cpu", dtype=dtype):
            h = lin(x)
            y = seeded(0, h, 0.5)
        assert y.dtype == h.dtype
        assert torch.equal(y != 0, seeded(0, torch.ones(4, 8), 0.5) != 0)
        y.float().sum().backward()
        assert lin.weight.grad is not None


class TestRandomness:
    N = 1 << 20

    def mask(self, seed, p=0.5):
        return (seeded(seed, torch.ones(self.N), p) != 0).double().numpy()

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate(self, p):
        kept = int(self.mask(1, p).sum())
        keep = 1 - threshold(p) / 2**16
        assert binomtest(kept, self.N, keep).pvalue > ALPHA, (
            f"kept {kept} of {self.N} at p={p}"
        )

    # N // 8 and N // 4 apart: two lanes decided by one Philox call (the two halves of a
    # word, and two words)
    @pytest.mark.parametrize("lag", [1, 2, 3, 4, 5, 64, 1024, N // 8, N // 4])
    def test_no_correlation_between_neighbours_and_lags(self, lag):
        m = self.mask(2)
        r, pvalue = pearsonr(m[:-lag], m[lag:])
        assert pvalue > ALPHA, f"masks {lag} apart correlate: r = {r:.4f}"

    def test_no_correlation_between_consecutive_seeds(self):
        r, pvalue = pearsonr(self.mask(100), self.mask(101))
        assert pvalue > ALPHA, f"seeds 100 and 101 correlate: r = {r:.4f}"

    def test_no_correlation_between_consecutive_keys(self):
        a = (decisions((5, 9), self.N) >= 2**15).double().numpy()
        b = (decisions((6, 9), self.N) >= 2**15).double().numpy()
        r, pvalue = pearsonr(a, b)
        assert pvalue > ALPHA, f"keys 5 and 6 correlate: r = {r:.4f}"

    def test_no_correlation_between_layers_and_calls(self):
        torch.manual_seed(0)
        model = torch.nn.Sequential(LowMemDropout(0.5), LowMemDropout(0.5))
        x = torch.ones(self.N)
        masks = [(m(x) != 0).double().numpy() for _ in range(2) for m in model]
        for i in range(4):
            for j in range(i + 1, 4):
                r, pvalue = pearsonr(masks[i], masks[j])
                assert pvalue > ALPHA, f"masks {i} and {j} correlate: r = {r:.4f}"

    def test_raw_numbers_uniform(self):
        u = decisions((12345, 678), self.N)
        assert chisquare(torch.bincount(u >> 8, minlength=256).numpy()).pvalue > ALPHA
        assert chisquare(torch.bincount(u & 255, minlength=256).numpy()).pvalue > ALPHA
        lanes = u.view(8, -1)  # each of the eight numbers of a Philox output, alone
        for k in range(8):
            counts = torch.bincount(lanes[k] >> 12, minlength=16).numpy()
            assert chisquare(counts).pvalue > ALPHA, f"number {k} is not uniform"


class TestStreams:
    def test_two_calls_and_two_layers_differ_and_replay_from_seed(self):
        torch.manual_seed(3)
        a, b = LowMemDropout(0.5), LowMemDropout(0.5)
        x = torch.ones(1000)
        first = [a(x), b(x), a(x)]
        assert not torch.equal(first[0], first[1]), "two layers share a mask"
        assert not torch.equal(first[0], first[2]), (
            "two calls of one layer share a mask"
        )
        torch.manual_seed(3)
        assert all(torch.equal(m(x), f) for m, f in zip((a, b, a), first))

    def test_generator(self):
        x = torch.ones(1000)
        g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
        state = torch.get_rng_state()
        y = lowmem(x, 0.5, generator=g1)
        assert torch.equal(torch.get_rng_state(), state), (
            "a given generator must be used alone"
        )
        assert torch.equal(y, lowmem(x, 0.5, generator=g2))
        assert not torch.equal(y, lowmem(x, 0.5, generator=g1))

    def test_no_state_of_its_own(self):
        m = LowMemDropout(0.3)
        assert isinstance(m, _DropoutBase)
        assert m.state_dict() == {} and repr(m) == "LowMemDropout(p=0.3)"
        x = torch.randn(4)
        assert m.eval()(x) is x

    @pytest.mark.parametrize("kw", [{"p": 2.0}, {"p": -1}])
    def test_bad_arguments(self, kw):
        with pytest.raises(ValueError, match="but got"):
            LowMemDropout(**kw)

    def test_resume_replays_masks(self):
        def make():
            torch.manual_seed(0)
            return torch.nn.Sequential(
                torch.nn.Linear(8, 32), LowMemDropout(0.5), torch.nn.Linear(32, 1)
            )

        def step(model, opt, x):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()

        x = torch.randn(16, 8)
        model = make()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            step(model, opt, x)
        saved = copy.deepcopy(
            (model.state_dict(), opt.state_dict(), torch.get_rng_state())
        )
        for _ in range(3):
            step(model, opt, x)
        resumed = make()
        opt2 = torch.optim.SGD(resumed.parameters(), lr=0.1)
        resumed.load_state_dict(saved[0])
        opt2.load_state_dict(saved[1])
        torch.set_rng_state(saved[2])
        for _ in range(3):
            step(resumed, opt2, x)
        for a, b in zip(model.parameters(), resumed.parameters()):
            assert torch.equal(a, b), "the resumed run did not replay the same masks"

    @pytest.mark.parametrize("reentrant", [True, False])
    @pytest.mark.parametrize("compile", [False, True])
    def test_checkpoint_gives_the_plain_runs_gradients(self, reentrant, compile):
        torch.manual_seed(0)
        lin1, lin2 = torch.nn.Linear(16, 64), torch.nn.Linear(64, 4)

        def f(t):
            return lin2(lowmem_dropout(torch.relu(lin1(t)), 0.5, compile=compile))

        x = torch.randn(32, 16, requires_grad=True)

        def grads(run):
            for q in (x, *lin1.parameters(), *lin2.parameters()):
                q.grad = None
            torch.manual_seed(1)
            run(x).square().sum().backward()
            return [q.grad.clone() for q in (x, *lin1.parameters(), *lin2.parameters())]

        plain = grads(f)
        ckpt = grads(lambda t: checkpoint(f, t, use_reentrant=reentrant))
        for a, b in zip(plain, ckpt):
            assert torch.equal(a, b), (
                f"checkpoint(use_reentrant={reentrant}) changed a gradient"
            )

    def test_compiled_model_compiles_once(self):
        from torch._dynamo.utils import counters

        torch._dynamo.reset()
        counters.clear()
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(8, 8), LowMemDropout(0.5), torch.nn.Linear(8, 1)
        )
        compiled = torch.compile(model)
        x = torch.randn(4, 8)
        outs = []
        for _ in range(6):
            y = compiled(x)
            y.sum().backward()
            outs.append(y.detach())
        frames = counters["stats"]["unique_graphs"]
        assert frames == 1, f"compiled {frames} graphs in 6 steps"
        assert not torch.equal(outs[0], outs[1]), (
            "two steps of a compiled model share a mask"
        )
        torch.manual_seed(5)
        a = compiled(x)
        torch.manual_seed(5)
        assert torch.equal(a, compiled(x)), (
            "a compiled model is not reproducible from the seed"
        )


class TestCompilePath:
    def test_fallback_warns_once_per_device_and_dtype_and_keeps_values(
        self, monkeypatch
    ):
        def broken(fn, **kw):
            def run(*a):
                raise RuntimeError("no compiler here")

            return run

        monkeypatch.setattr(lowmem_module, "_kernels", {})
        monkeypatch.setattr(lowmem_module, "_trusted", set())
        monkeypatch.setattr(lowmem_module.torch, "compile", broken)
        levels = {
            name: logging.getLogger(name).level
            for name in logging.root.manager.loggerDict
        }
        x = torch.randn(64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = seeded(0, x, 0.5, compile=True)
            seeded(0, x, 0.5, compile=True)
            seeded(0, x.double(), 0.5, compile=True)
        messages = [
            str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
        ]
        assert len(messages) == 2, messages  # once for float32, once for float64
        assert "cpu torch.float32" in messages[0] and "no compiler here" in messages[0]
        assert "failed to compile" in messages[0]
        assert torch.equal(y, seeded(0, x, 0.5))
        after = {name: logging.getLogger(name).level for name in levels}
        assert after == levels, "lowmem_dropout changed a logger's level"

    def test_compiles_on_cpu_without_warning(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            seeded(0, torch.randn(256), 0.5, compile=True)
        assert lowmem_module._kernels.get(("cpu", torch.float32)) is not None

    @pytest.mark.parametrize("branch", ["lanes", "slabs", "elements"])
    def test_a_kernel_that_fails_its_known_answers_is_not_used(
        self, monkeypatch, branch
    ):
        # A miscompiled kernel (as inductor's cache gave under AVX2, issue 30): one
        # element of every output wrong. It must be caught before its first use on
        # each of the kernel's paths, and the call must give the eager values.
        def miscompiled(fn, **kw):
            def run(t, *args):
                out = fn(t, *args).clone()
                out.view(-1)[-1] += 1
                return out

            return run

        monkeypatch.setattr(lowmem_module, "_kernels", {})
        monkeypatch.setattr(lowmem_module, "_trusted", set())
        monkeypatch.setattr(lowmem_module.torch, "compile", miscompiled)
        x = {
            "lanes": torch.randn(3, 1001),
            "slabs": torch.randn(16, 3, 4, 5).to(memory_format=torch.channels_last),
            "elements": torch.randn(7, 9).t(),
        }[branch]
        with pytest.warns(RuntimeWarning, match="failed its known-answer test") as w:
            y = seeded(0, x, 0.3, compile=True)
        assert "cpu torch.float32" in str(w[0].message)
        assert lowmem_module._kernels[("cpu", torch.float32)] is None
        assert torch.equal(y, seeded(0, x, 0.3))

    def test_each_path_is_checked_before_its_first_compiled_use(self, monkeypatch):
        monkeypatch.setattr(lowmem_module, "_trusted", set())
        tested = []
        known = lowmem_module._known_answers

        def spy(compiled, device, dtype, branch):
            tested.append(branch)
            return known(compiled, device, dtype, branch)

        monkeypatch.setattr(lowmem_module, "_known_answers", spy)
        cl = torch.channels_last
        for x in (
            torch.randn(4099),
            torch.randn(2, 3, 5),  # lanes again: no new test
            torch.randn(6, 3, 4, 5).to(memory_format=cl),
            torch.randn(16, 3, 4, 5).to(memory_format=cl),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                assert torch.equal(seeded(0, x, 0.3, compile=True), seeded(0, x, 0.3))
        assert tested == ["lanes", "elements", "slabs"]

    def test_known_answers_cover_every_path_with_odd_sizes(self):
        cases = lowmem_module._CASES
        assert set(cases) == {"lanes", "slabs", "elements"}
        for branch, shapes in cases.items():
            for shape, layout in shapes:
                x = torch.empty(shape)
                x = x.t() if layout == "t" else x
                if isinstance(layout, torch.memory_format):
                    x = x.to(memory_format=layout)
                tp, perm, logical = lowmem_module._dense_order(x)
                assert lowmem_module._branch(logical, perm) == branch, (shape, layout)
            # sizes that are no whole number of AVX-512 vectors (16 floats)
            sizes = [torch.Size(shape).numel() for shape, _ in shapes]
            assert any(n % 16 for n in sizes), f"{branch}: only multiples of 16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestCUDA:
    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    def test_same_mask_as_cpu_compiled(self, dtype):
        x = torch.ones(4, 1000, dtype=dtype)
        cpu = seeded(0, x, 0.3)
        for compile in (False, True):
            gpu = seeded(0, x.cuda(), 0.3, compile=compile)
            assert torch.equal(gpu.cpu() != 0, cpu != 0)
        assert lowmem_module._kernels.get(("cuda", dtype)) is not None

    def test_checkpoint_on_cuda(self):
        torch.manual_seed(0)
        lin = torch.nn.Linear(16, 16).cuda()
        x = torch.randn(8, 16, device="cuda", requires_grad=True)
        f = lambda t: lowmem_dropout(lin(t), 0.5).sum()  # noqa: E731
        torch.manual_seed(1)
        f(x).backward()
        g = lin.weight.grad.clone()
        lin.weight.grad = None
        torch.manual_seed(1)
        checkpoint(f, x, use_reentrant=False).backward()
        assert torch.equal(g, lin.weight.grad)
