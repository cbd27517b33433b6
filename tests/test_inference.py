"""Tests for dropkit.inference: mc_predict (Monte-Carlo dropout)."""

import pytest
import torch
from scipy.stats import binomtest
from torch import nn

import dropkit
from dropkit import (
    AlphaDropout,
    Dropout,
    DropPath,
    FeatureAlphaDropout,
    GaussianDropout,
    SpatialDropout,
    mc_predict,
)

ALPHA = 1e-9  # false-alarm probability of each statistical test


def bn_net(drop):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), drop, nn.Linear(8, 3)
    )
    net.train()
    net(torch.randn(16, 4))  # non-trivial running statistics
    net.eval()
    return net


class TestMcPredict:
    def test_exported(self):
        assert "mc_predict" in dropkit.__all__ and dropkit.mc_predict is mc_predict

    def test_probabilities_rows_sum_to_one(self):
        out = mc_predict(bn_net(Dropout(0.5)), torch.randn(10, 4), 5)
        assert out.shape == (10, 3)
        assert torch.allclose(out.sum(1), torch.ones(10)), f"row sums {out.sum(1)}"
        assert (out >= 0).all()

    def test_equals_mean_of_k_passes_with_only_dropout_on(self):
        net, ref_net, x = bn_net(Dropout(0.5)), bn_net(Dropout(0.5)), torch.randn(10, 4)
        ref_net[3].train()
        torch.manual_seed(1)
        with torch.no_grad():
            ref = torch.stack([ref_net(x).softmax(-1) for _ in range(7)]).mean(0)
        torch.manual_seed(1)
        out = mc_predict(net, x, 7)
        assert torch.allclose(out, ref, atol=1e-6), (
            f"max difference {(out - ref).abs().max()}"
        )

    def test_softmax_false_averages_raw_outputs(self):
        net, ref_net, x = bn_net(Dropout(0.5)), bn_net(Dropout(0.5)), torch.randn(10, 4)
        ref_net[3].train()
        torch.manual_seed(2)
        with torch.no_grad():
            ref = torch.stack([ref_net(x) for _ in range(4)]).mean(0)
        torch.manual_seed(2)
        out = mc_predict(net, x, 4, softmax=False)
        assert torch.allclose(out, ref, atol=1e-6)

    def test_k_one_is_a_single_stochastic_pass(self):
        net, x = bn_net(Dropout(0.5)), torch.randn(50, 4)
        with torch.no_grad():
            det = net(x).softmax(-1)
        torch.manual_seed(3)
        assert not torch.allclose(mc_predict(net, x, 1), det), (
            "dropout was not active during the pass"
        )

    def test_batchnorm_frozen_and_modes_restored(self):
        net = bn_net(Dropout(0.5))
        net[1].train()  # an unusual mix must come back unchanged
        net[1].momentum = 0.5
        modes = [m.training for m in net.modules()]
        stats = [b.clone() for b in net[1].buffers()]
        mc_predict(net, torch.randn(10, 4), 3)
        assert [m.training for m in net.modules()] == modes
        assert all(torch.equal(a, b) for a, b in zip(stats, net[1].buffers())), (
            "BatchNorm statistics changed"
        )

    def test_modes_restored_when_a_pass_raises(self):
        net = bn_net(Dropout(0.5))
        modes = [m.training for m in net.modules()]
        with pytest.raises(RuntimeError):
            mc_predict(net, torch.randn(10, 5), 3)  # wrong input width
        assert [m.training for m in net.modules()] == modes

    @pytest.mark.parametrize(
        "drop",
        [
            Dropout(0.5),
            SpatialDropout(0.5),
            DropPath(0.5),
            AlphaDropout(0.5),
            FeatureAlphaDropout(0.5),
            GaussianDropout(0.5),
            nn.Dropout(0.5),
            nn.Dropout1d(0.5),
            nn.AlphaDropout(0.5),
            nn.FeatureAlphaDropout(0.5),
        ],
        ids=lambda m: type(m).__name__,
    )
    def test_switches_every_dropout_type(self, drop):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), drop, nn.Linear(8, 3)).eval()
        x = torch.randn(32, 4)
        with torch.no_grad():
            det = net(x)
        torch.manual_seed(4)
        assert not torch.allclose(mc_predict(net, x, 1, softmax=False), det), (
            f"{type(drop).__name__} stayed off"
        )
        assert not net[1].training

    def test_no_grad(self):
        net = bn_net(Dropout(0.5))
        assert not mc_predict(net, torch.randn(3, 4), 2).requires_grad

    def test_mean_converges_to_expectation_for_a_linear_model(self):
        # For a linear layer after dropout, E[output] is the weight-scaled output:
        # check the mean of many passes. Each pass on ones keeps a unit with
        # probability 1/2, a binomial count we can test.
        torch.manual_seed(5)
        net = nn.Sequential(Dropout(0.5), nn.Linear(1, 1, bias=False))
        with torch.no_grad():
            net[1].weight.fill_(0.5)  # a kept unit gives 0.5 * 2 = 1, a dropped one 0
        n = 20_000
        out = mc_predict(net, torch.ones(1, 1), n, softmax=False)
        kept = round(float(out) * n)
        assert binomtest(kept, n, 0.5).pvalue > ALPHA, (
            f"{kept} of {n} passes kept the unit"
        )

    @pytest.mark.parametrize("k", [0, -3, 2.5, True, "5", None])
    def test_bad_k_raises(self, k):
        with pytest.raises(
            ValueError, match=f"but got {k!r}".replace("(", r"\(").replace(")", r"\)")
        ):
            mc_predict(bn_net(Dropout(0.5)), torch.randn(2, 4), k)

    def test_numpy_integer_k_accepted(self):
        import numpy as np

        out = mc_predict(bn_net(Dropout(0.5)), torch.randn(2, 4), np.int64(3))
        assert out.shape == (2, 3)

    def test_not_a_module_raises(self):
        with pytest.raises(TypeError, match="function"):
            mc_predict(lambda x: x, torch.randn(2, 4), 3)

    def test_no_dropout_module_raises(self):
        with pytest.raises(ValueError, match="no dropout module"):
            mc_predict(nn.Linear(4, 3), torch.randn(2, 4), 3)


def every_dropout_net():
    """BatchNorm and one dropout module of each family, torch's and dropkit's, on 4-D
    activations."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Dropout2d(0.2),
        nn.Dropout3d(0.2),
        nn.AlphaDropout(0.2),
        nn.FeatureAlphaDropout(0.2),
        Dropout(0.2),
        SpatialDropout(0.2),
        DropPath(0.2),
        AlphaDropout(0.2),
        FeatureAlphaDropout(0.2),
        GaussianDropout(0.2),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 3),
    )
    net.train()
    net(torch.randn(8, 2, 5, 5))
    return net.eval()


class TestEveryDropoutSwitchedOn:
    def test_all_dropout_modules_on_and_batchnorm_off_during_passes(self):
        net = every_dropout_net()
        seen = {}
        for name, m in net.named_modules():
            if name:
                m.register_forward_pre_hook(
                    lambda mod, inp, name=name: seen.setdefault(name, set()).add(
                        mod.training
                    )
                )
        mc_predict(net, torch.randn(4, 2, 5, 5), 3)
        dropouts = [
            n
            for n, m in net.named_modules()
            if isinstance(m, (nn.modules.dropout._DropoutNd, dropkit.drop._DropoutBase))
        ]
        assert len(dropouts) == 11
        off = [
            f"{n} ({type(net.get_submodule(n)).__name__})"
            for n in dropouts
            if seen[n] != {True}
        ]
        assert not off, f"dropout modules left in eval mode during the passes: {off}"
        others = [n for n in seen if n not in dropouts and seen[n] != {False}]
        assert not others, (
            f"non-dropout modules in training mode during the passes: {others}"
        )
        assert not any(m.training for m in net.modules()), "modes not restored"

    def test_equals_mean_of_passes_with_every_dropout_on(self):
        net, ref_net, x = (
            every_dropout_net(),
            every_dropout_net(),
            torch.randn(4, 2, 5, 5),
        )
        for m in ref_net.modules():
            if isinstance(
                m, (nn.modules.dropout._DropoutNd, dropkit.drop._DropoutBase)
            ):
                m.train()
        torch.manual_seed(6)
        with torch.no_grad():
            ref = torch.stack([ref_net(x).softmax(-1) for _ in range(5)]).mean(0)
        torch.manual_seed(6)
        assert torch.allclose(mc_predict(net, x, 5), ref, atol=1e-6)

    def test_only_nn_dropout_on_differs(self):
        # The usual wrong answer: switching on nn.Dropout alone gives another result.
        net, wrong_net, x = (
            every_dropout_net(),
            every_dropout_net(),
            torch.randn(4, 2, 5, 5),
        )
        for m in wrong_net.modules():
            if isinstance(m, nn.Dropout):
                m.train()
        torch.manual_seed(6)
        with torch.no_grad():
            wrong = torch.stack([wrong_net(x).softmax(-1) for _ in range(5)]).mean(0)
        torch.manual_seed(6)
        assert not torch.allclose(mc_predict(net, x, 5), wrong, atol=1e-4)


def modes_during_passes(model, x):
    """{module name: its training flag in every one of mc_predict's passes}."""
    model.eval()
    seen = []
    hook = model.register_forward_pre_hook(
        lambda mod, inp: seen.append({n: m.training for n, m in model.named_modules()})
    )
    mc_predict(model, x, 2, softmax=False)
    hook.remove()
    assert len(seen) == 2 and seen[0] == seen[1]
    assert not any(m.training for m in model.modules()), "modes not restored"
    return seen[0]


def switched_on(model, x):
    return sorted(name for name, on in modes_during_passes(model, x).items() if on)


def passes_differ(model, x):
    model.eval()
    samples = dropkit.mc_samples(model, x, 2, softmax=False)
    return not torch.equal(samples[0], samples[1])


class Out0(nn.Module):
    """Keeps the first output of a module that returns a tuple (RNNs, attention)."""

    def __init__(self, module, self_attention=False):
        super().__init__()
        self.module, self.self_attention = module, self_attention

    def forward(self, x):
        args = (x, x, x) if self.self_attention else (x,)
        return self.module(*args)[0]


class TestWhatIsSwitchedOn:
    """Only dropout: each module whose own mode turns dropout on and nothing else, never
    its children (issue 30)."""

    def test_weight_drop_leaves_the_wrapped_module_in_eval_mode(self):
        torch.manual_seed(0)
        inner = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
        inner.train()(torch.randn(16, 4))
        net = dropkit.WeightDrop(inner, "0.weight", 0.5).eval()
        stats = inner[1].running_mean.clone()
        assert switched_on(net, torch.randn(8, 4)) == [""]
        assert torch.equal(inner[1].running_mean, stats), "BatchNorm was updated"
        assert passes_differ(net, torch.randn(8, 4))

    @pytest.mark.parametrize("p", [0.0, 0.3])
    def test_lstm_dropout_between_layers_follows_the_lstm_wrapped_or_not(self, p):
        torch.manual_seed(0)
        lstm = nn.LSTM(4, 8, num_layers=2, dropout=p, batch_first=True)
        x = torch.randn(3, 5, 4)
        wrapped = Out0(dropkit.WeightDrop(lstm, "weight_hh_l0", 0.5))
        assert switched_on(wrapped, x) == (
            ["module", "module.module"] if p else ["module"]
        )
        if p:
            assert switched_on(Out0(lstm), x) == ["module"]
            assert passes_differ(Out0(lstm), x)

    @pytest.mark.parametrize("p", [0.0, 0.3])
    def test_multihead_attention(self, p):
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Dropout(0.0), Out0(nn.MultiheadAttention(8, 2, dropout=p), True)
        )
        x = torch.randn(5, 3, 8)
        assert switched_on(net, x) == (["0", "1.module"] if p else ["0"])
        assert passes_differ(net, x) == bool(p)

    def test_transformer_encoder_layer_does_not_take_its_eval_fast_path(self):
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2, batch_first=True)
        x = torch.randn(3, 5, 8)
        # without hooks, which would also turn the fast path off
        assert passes_differ(layer.eval(), x), "every pass took the eval fast path"
        assert switched_on(layer, x) == [
            "",
            "dropout",
            "dropout1",
            "dropout2",
            "self_attn",
        ]
        off = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        assert "" not in switched_on(nn.Sequential(nn.Dropout(0.1), off), x)

    @pytest.mark.parametrize("fused", [True, False])
    def test_timm_block(self, fused):
        timm = pytest.importorskip("timm")
        torch.manual_seed(0)
        block = timm.models.vision_transformer.Block(
            8, 2, proj_drop=0.1, attn_drop=0.3, drop_path=0.1
        )
        block.attn.fused_attn = fused
        x = torch.randn(3, 5, 8)
        assert switched_on(block, x) == [
            "attn",
            "attn.attn_drop",
            "attn.proj_drop",
            "drop_path1",
            "drop_path2",
            "mlp.drop1",
            "mlp.drop2",
        ]
        only_attention = timm.models.vision_transformer.Block(8, 2, attn_drop=0.3)
        only_attention.attn.fused_attn = fused
        assert passes_differ(only_attention.eval(), x), "attention dropout stayed off"

    def test_dropkit_vit_block(self):
        torch.manual_seed(0)
        block = dropkit.ViTBlock(8, 2, attn_drop=0.3).eval()
        x = torch.randn(3, 5, 8)
        assert switched_on(block, x) == [
            "attn.attn_drop",
            "attn.proj_drop",
            "mlp.drop1",
            "mlp.drop2",
        ]
        assert passes_differ(block, x), "attention dropout stayed off"
