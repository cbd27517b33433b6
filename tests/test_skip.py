"""dropkit.skip: DropPath on a residual branch, skipping the dropped samples' work."""

import pytest
import torch
from torch import nn

from dropkit import drop_path
from dropkit.skip import drop_path_residual


def branch_module():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.LayerNorm(16), nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16)
    )


class TestDropPathResidual:
    @pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
    def test_equals_masking_version_for_the_same_mask(self, p):
        f = branch_module()
        x1 = torch.randn(64, 5, 16, requires_grad=True)
        x2 = x1.detach().clone().requires_grad_()
        torch.manual_seed(1)
        ours = drop_path_residual(x1, f, p)
        ours.square().sum().backward()
        g_ours = [q.grad.clone() for q in f.parameters()]
        f.zero_grad()
        torch.manual_seed(1)
        ref = x2 + drop_path(f(x2), p)
        ref.square().sum().backward()
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(x1.grad, x2.grad)
        for a, q in zip(g_ours, f.parameters()):
            torch.testing.assert_close(a, q.grad)

    def test_branch_runs_only_on_kept_samples(self):
        seen = []
        f = lambda t: seen.append(t.shape[0]) or t * 2  # noqa: E731
        torch.manual_seed(2)
        out = drop_path_residual(torch.ones(1000, 3), f, 0.5)
        kept = int((out[:, 0] != 1).sum())
        assert seen == [kept] and 400 < kept < 600

    def test_off_and_p1(self):
        f = branch_module()
        x = torch.randn(8, 16)
        torch.testing.assert_close(
            drop_path_residual(x, f, 0.5, training=False), x + f(x)
        )
        torch.testing.assert_close(drop_path_residual(x, f, 0.0), x + f(x))
        assert torch.equal(drop_path_residual(x, f, 1.0), x)

    @pytest.mark.parametrize("p", [1.0, 0.9])
    def test_all_dropped_gives_zero_parameter_gradients(self, p):
        # DDP expects a gradient for every parameter; masking gives zeros, so must this.
        f = branch_module()
        x = torch.randn(4, 16, requires_grad=True)
        torch.manual_seed(0)  # at p = 0.9 this seed drops all 4 samples
        noise = torch.empty(4, 1).bernoulli_(1 - p)
        assert noise.sum() == 0
        torch.manual_seed(0)
        out = drop_path_residual(x, f, p)
        assert torch.equal(out, x)
        out.square().sum().backward()
        for name, q in f.named_parameters():
            assert q.grad is not None, f"{name} got no gradient"
            assert torch.equal(q.grad, torch.zeros_like(q)), (
                f"{name} got a nonzero gradient"
            )
        torch.testing.assert_close(x.grad, 2 * x.detach())

    def test_all_dropped_never_runs_the_branch(self):
        # some attention kernels refused a batch of 0 (pytorch#133780)
        def branch(t):
            raise AssertionError(f"the branch ran on a batch of {t.shape[0]}")

        x = torch.randn(4, 3, requires_grad=True)
        out = drop_path_residual(x, branch, 1.0)
        assert torch.equal(out, x) and out is not x
        out.sum().backward()
        assert torch.equal(x.grad, torch.ones_like(x))

    def test_all_dropped_params_of_a_callable_branch(self):
        f = branch_module()
        out = drop_path_residual(
            torch.randn(4, 16), lambda t: f(t), 1.0, params=f.parameters()
        )
        out.sum().backward()
        assert all(torch.equal(q.grad, torch.zeros_like(q)) for q in f.parameters())
        f.zero_grad(set_to_none=True)
        x = torch.randn(4, 16, requires_grad=True)
        drop_path_residual(x, lambda t: f(t), 1.0).sum().backward()
        assert all(q.grad is None for q in f.parameters()), "no params: no gradients"

    def test_all_dropped_draws_as_drop_path_does(self):
        x = torch.randn(6, 4)
        torch.manual_seed(0)
        drop_path_residual(x, torch.tanh, 1.0)
        after = torch.rand(1)
        torch.manual_seed(0)
        drop_path(x, 1.0)
        assert torch.equal(after, torch.rand(1))

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
    def test_autocast_matches_masking(self, dtype):
        f = branch_module()
        x = torch.randn(16, 5, 16)
        grads = []
        outs = []
        for run in (
            lambda t: drop_path_residual(t, f, 0.5),
            lambda t: t + drop_path(f(t), 0.5),
        ):
            f.zero_grad()
            with torch.autocast("cpu", dtype=dtype):
                torch.manual_seed(1)
                out = run(x)
            outs.append(out)
            out.float().square().sum().backward()
            grads.append([q.grad.clone() for q in f.parameters()])
        assert outs[0].dtype == outs[1].dtype == torch.float32
        torch.testing.assert_close(outs[0], outs[1], atol=2e-2, rtol=2e-2)
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, atol=5e-2, rtol=5e-2)

    def test_generator(self):
        f = lambda t: t + 1  # noqa: E731
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        a = drop_path_residual(torch.zeros(64, 3), f, 0.5, generator=g1)
        assert torch.equal(
            a, drop_path_residual(torch.zeros(64, 3), f, 0.5, generator=g2)
        )

    def test_scale_by_keep_false(self):
        torch.manual_seed(3)
        out = drop_path_residual(
            torch.zeros(100, 2), lambda t: t + 1, 0.5, scale_by_keep=False
        )
        assert set(out.unique().tolist()) == {0.0, 1.0}

    def test_bad_input(self):
        with pytest.raises(ValueError, match="but got 1.5"):
            drop_path_residual(torch.ones(2, 2), lambda t: t, 1.5)
        with pytest.raises(TypeError, match="branch must be callable"):
            drop_path_residual(torch.ones(2, 2), "f", 0.5)
        with pytest.raises(ValueError, match="keep the shape of a sample"):
            drop_path_residual(torch.ones(4, 2), lambda t: t.sum(1, keepdim=True), 0.5)


class TestViTBlockSkipDropped:
    @pytest.mark.parametrize("p", [0.3, 0.7])
    def test_same_output_and_gradients_as_masking(self, p):
        from dropkit import ViTBlock

        torch.manual_seed(0)
        masking = ViTBlock(16, 2, drop_path=p)
        skipping = ViTBlock(16, 2, drop_path=p, skip_dropped=True)
        skipping.load_state_dict(masking.state_dict())
        x1 = torch.randn(32, 5, 16, requires_grad=True)
        x2 = x1.detach().clone().requires_grad_()
        torch.manual_seed(1)
        a = skipping(x1)
        torch.manual_seed(1)
        b = masking(x2)
        torch.testing.assert_close(a, b)
        a.square().sum().backward()
        b.square().sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad)
        for (name, q1), q2 in zip(skipping.named_parameters(), masking.parameters()):
            torch.testing.assert_close(
                q1.grad, q2.grad, msg=lambda m, n=name: f"{n}: {m}"
            )

    def test_all_dropped_gives_every_parameter_a_zero_gradient(self):
        from dropkit import ViTBlock

        torch.manual_seed(0)
        block = ViTBlock(16, 2, drop_path=1.0, skip_dropped=True).train()
        x = torch.randn(3, 5, 16, requires_grad=True)
        out = block(x)
        assert torch.equal(out, x)
        out.sum().backward()
        for name, q in block.named_parameters():
            assert q.grad is not None and not q.grad.any(), name

    def test_eval_and_no_drop_path_unchanged(self):
        from dropkit import ViTBlock

        torch.manual_seed(0)
        block = ViTBlock(16, 2, drop_path=0.5, skip_dropped=True).eval()
        x = torch.randn(4, 5, 16)
        assert torch.equal(block(x), block(x))
        plain = ViTBlock(16, 2, skip_dropped=True)
        assert torch.equal(plain(x), plain.eval()(x))
