"""Tests for dropkit.sequence (chapter 8): locked and embedding dropout, WeightDrop."""

import pytest
import torch
from scipy.stats import binomtest
from torch import nn
from torch.nn import functional as F

from dropkit import (
    LockedDropout,
    WeightDrop,
    dropout,
    embedding_dropout,
    locked_dropout,
)
from dropkit.drop import _DropoutBase


def _awd_embedded_dropout(weight, words, p):
    # AWD-LSTM's embedded_dropout (salesforce/awd-lstm-lm, embed_regularize.py).
    mask = weight.new().resize_((weight.size(0), 1)).bernoulli_(1 - p).expand_as(weight)
    return F.embedding(words, mask / (1 - p) * weight)


class TestLockedDropout:
    def test_mask_shared_over_time_only(self):
        torch.manual_seed(0)
        y = locked_dropout(torch.ones(64, 30, 16), 0.5)
        assert set(y.unique().tolist()) <= {0.0, 2.0}
        assert torch.equal(y, y[:, :1].expand_as(y)), (
            "the mask must not change over time"
        )
        first = y[:, 0]
        assert not torch.equal(first, first[:1].expand_as(first)), (
            "one mask per sequence"
        )
        assert not torch.equal(first, first[:, :1].expand_as(first)), (
            "one draw per feature"
        )

    def test_time_first_layout(self):
        torch.manual_seed(0)
        y = locked_dropout(torch.ones(30, 64, 16), 0.5, batch_first=False)
        assert torch.equal(y, y[:1].expand_as(y))

    def test_equals_dropout_with_noise_shape(self):
        x = torch.randn(4, 7, 5)
        torch.manual_seed(1)
        a = locked_dropout(x, 0.3)
        torch.manual_seed(1)
        assert torch.equal(a, dropout(x, 0.3, noise_shape=(None, 1, None)))
        torch.manual_seed(1)
        b = locked_dropout(x.transpose(0, 1), 0.3, batch_first=False)
        assert torch.equal(a, b.transpose(0, 1))

    def test_keep_rate(self):
        torch.manual_seed(2)
        y = locked_dropout(torch.ones(400, 3, 50), 0.3)
        kept = int((y[:, 0] != 0).sum())
        assert binomtest(kept, 400 * 50, 0.7).pvalue > 1e-6, f"kept {kept} of 20000"

    def test_p0_and_eval_return_input(self):
        x = torch.randn(2, 3, 4)
        assert locked_dropout(x, 0.0) is x
        assert locked_dropout(x, 0.5, training=False) is x
        assert LockedDropout(0.5).eval()(x) is x

    def test_p1_gives_zeros_and_zero_grad(self):
        x = torch.randn(2, 3, 4, requires_grad=True)
        y = locked_dropout(x, 1.0)
        y.sum().backward()
        assert torch.equal(y, torch.zeros_like(y)) and not torch.isnan(x.grad).any()
        assert torch.equal(x.grad, torch.zeros_like(x))

    def test_gradient_is_the_mask(self):
        x = torch.randn(5, 6, 7, requires_grad=True)
        torch.manual_seed(3)
        y = locked_dropout(x, 0.4)
        y.sum().backward()
        assert torch.allclose(x.grad, torch.where(y != 0, 1 / 0.6, 0.0))

    def test_generator_reproduces(self):
        x = torch.randn(8, 5, 6)
        a = locked_dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
        b = locked_dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
        assert torch.equal(a, b)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
    def test_dtype_follows_input(self, dtype):
        assert locked_dropout(torch.ones(2, 3, 4, dtype=dtype), 0.5).dtype == dtype

    def test_meta_device(self):
        assert (
            locked_dropout(torch.ones(2, 3, 4, device="meta"), 0.5).device.type
            == "meta"
        )

    @pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5), ()])
    def test_bad_rank_names_shape(self, shape):
        with pytest.raises(ValueError, match="3-D sequence batch"):
            locked_dropout(torch.ones(shape), 0.5, training=False)

    @pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), True, "0.5"])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match="between 0 and 1"):
            locked_dropout(torch.ones(2, 3, 4), p, training=False)
        with pytest.raises(ValueError, match="between 0 and 1"):
            LockedDropout(p)

    def test_bad_batch_first_and_input(self):
        with pytest.raises(TypeError, match="batch_first must be True or False"):
            locked_dropout(torch.ones(2, 3, 4), 0.5, batch_first=1)
        with pytest.raises(TypeError, match="batch_first must be True or False"):
            LockedDropout(0.5, batch_first="yes")
        with pytest.raises(TypeError, match="floating-point"):
            locked_dropout(torch.ones(2, 3, 4, dtype=torch.int64), 0.5)

    def test_module(self):
        m = LockedDropout(0.25, batch_first=False)
        assert isinstance(m, _DropoutBase)
        assert repr(m) == "LockedDropout(p=0.25, batch_first=False)"
        torch.manual_seed(4)
        y = m(torch.ones(10, 32, 8))
        assert torch.equal(y, y[:1].expand_as(y))


class TestEmbeddingDropout:
    def test_whole_words_dropped_everywhere(self):
        torch.manual_seed(0)
        tokens = torch.randint(0, 20, (16, 40))
        y = embedding_dropout(tokens, torch.ones(20, 4), 0.5)
        assert set(y.unique().tolist()) <= {0.0, 2.0}
        kept = y[..., 0] != 0
        for w in range(20):
            where = kept[tokens == w]
            assert bool((where == where[0]).all()), (
                f"word {w} kept at some positions only"
            )
        assert ((y == 0).all(-1) | (y == 2).all(-1)).all()

    def test_equals_awd_lstm(self):
        weight = torch.randn(100, 16)
        words = torch.randint(0, 100, (8, 20))
        torch.manual_seed(1)
        theirs = _awd_embedded_dropout(weight, words, 0.2)
        torch.manual_seed(1)
        assert torch.equal(theirs, embedding_dropout(words, weight, 0.2))

    def test_eval_and_p0_are_plain_lookup(self):
        weight, words = torch.randn(10, 3), torch.tensor([[1, 2, 3, 1]])
        assert torch.equal(embedding_dropout(words, weight, 0.5, False), weight[words])
        assert torch.equal(embedding_dropout(words, weight, 0.0), weight[words])

    def test_p1_zeros_and_gradient(self):
        weight = torch.randn(10, 3, requires_grad=True)
        y = embedding_dropout(torch.tensor([0, 5, 5]), weight, 1.0)
        y.sum().backward()
        assert torch.equal(y, torch.zeros(3, 3)) and torch.equal(
            weight.grad, torch.zeros(10, 3)
        )

    def test_gradient_reaches_kept_rows_only(self):
        weight = torch.randn(50, 3, requires_grad=True)
        torch.manual_seed(2)
        y = embedding_dropout(torch.arange(50), weight, 0.5)
        y.sum().backward()
        kept = y[:, 0] != 0
        assert torch.allclose(
            weight.grad[kept], torch.full_like(weight.grad[kept], 2.0)
        )
        assert torch.equal(weight.grad[~kept], torch.zeros_like(weight.grad[~kept]))

    def test_keep_rate_and_generator(self):
        g = torch.Generator().manual_seed(3)
        y = embedding_dropout(
            torch.arange(20_000), torch.ones(20_000, 1), 0.3, generator=g
        )
        kept = int((y != 0).sum())
        assert binomtest(kept, 20_000, 0.7).pvalue > 1e-6
        g2 = torch.Generator().manual_seed(3)
        y2 = embedding_dropout(
            torch.arange(20_000), torch.ones(20_000, 1), 0.3, generator=g2
        )
        assert torch.equal(y, y2)

    def test_dtype_follows_weight(self):
        y = embedding_dropout(
            torch.tensor([1]), torch.ones(4, 2, dtype=torch.float16), 0.5
        )
        assert y.dtype == torch.float16

    def test_bad_inputs_name_values(self):
        w = torch.ones(5, 2)
        with pytest.raises(TypeError, match="integer token ids"):
            embedding_dropout(torch.ones(3), w, 0.5)
        with pytest.raises(TypeError, match="integer token ids"):
            embedding_dropout([1, 2], w, 0.5)
        with pytest.raises(ValueError, match=r"\[0, 5\).*from 0 to 5"):
            embedding_dropout(torch.tensor([0, 5]), w, 0.5, training=False)
        with pytest.raises(ValueError, match=r"from -1 to 2"):
            embedding_dropout(torch.tensor([-1, 2]), w, 0.5)
        with pytest.raises(ValueError, match=r"\(V, D\) embedding matrix.*\(5,\)"):
            embedding_dropout(torch.tensor([0]), torch.ones(5), 0.5)
        with pytest.raises(ValueError, match="but got 2"):
            embedding_dropout(torch.tensor([0]), w, 2, training=False)


def _lstm(seed=0, **kw):
    torch.manual_seed(seed)
    return nn.LSTM(4, 6, batch_first=True, **kw)


class TestWeightDrop:
    def test_state_dict_holds_the_raw_weights(self):
        lstm = _lstm()
        wd = WeightDrop(_lstm(1), "weight_hh_l0", p=0.5)
        assert list(wd.state_dict()) == [f"module.{k}" for k in lstm.state_dict()]
        wd.module.load_state_dict(lstm.state_dict())
        before = {k: v.clone() for k, v in wd.state_dict().items()}
        wd(torch.randn(2, 3, 4))  # a training call must not write into the parameters
        assert all(torch.equal(before[k], v) for k, v in wd.state_dict().items())
        names = [n for n, _ in wd.named_parameters()]
        assert names == [f"module.{n}" for n, _ in lstm.named_parameters()]

    def test_eval_and_p0_are_the_module(self):
        lstm = _lstm()
        x = torch.randn(3, 5, 4)
        assert torch.equal(WeightDrop(lstm, p=0.5).eval()(x)[0], lstm(x)[0])
        assert torch.equal(WeightDrop(lstm, p=0.0)(x)[0], lstm(x)[0])

    def test_training_equals_module_with_dropped_weight(self):
        lstm, copy = _lstm(), _lstm()
        wd = WeightDrop(lstm, "weight_hh_l0", p=0.5)
        x = torch.randn(3, 5, 4)
        torch.manual_seed(2)
        out = wd(x)[0]
        torch.manual_seed(2)
        with torch.no_grad():
            copy.weight_hh_l0.copy_(dropout(lstm.weight_hh_l0, 0.5))
        assert torch.equal(out, copy(x)[0])
        assert not torch.equal(out, lstm(x)[0])

    def test_new_mask_each_call(self):
        wd = WeightDrop(_lstm(), p=0.5)
        x = torch.randn(3, 5, 4)
        assert not torch.equal(wd(x)[0], wd(x)[0])

    def test_gradient_reaches_raw_weight_through_mask(self):
        lstm = _lstm()
        wd = WeightDrop(lstm, ["weight_hh_l0", "weight_ih_l0"], p=0.5)
        x = torch.randn(3, 5, 4)
        torch.manual_seed(3)
        wd(x)[0].sum().backward()
        torch.manual_seed(3)
        hh = dropout(lstm.weight_hh_l0.detach(), 0.5)
        ih = dropout(lstm.weight_ih_l0.detach(), 0.5)
        assert torch.equal(lstm.weight_hh_l0.grad == 0, hh == 0)
        assert torch.equal(lstm.weight_ih_l0.grad == 0, ih == 0)
        assert lstm.bias_hh_l0.grad.abs().sum() > 0

    def test_p1_no_nan(self):
        lstm = _lstm()
        wd = WeightDrop(lstm, p=1.0)
        out, (h, c) = wd(torch.randn(3, 5, 4))
        out.sum().backward()
        assert (
            not torch.isnan(out).any() and not torch.isnan(lstm.weight_hh_l0.grad).any()
        )
        assert torch.equal(lstm.weight_hh_l0.grad, torch.zeros_like(lstm.weight_hh_l0))

    @pytest.mark.parametrize("cls", [nn.GRU, nn.RNN, nn.LSTM])
    def test_rnn_kinds_and_layers(self, cls):
        torch.manual_seed(4)
        rnn = cls(4, 6, num_layers=2, batch_first=True)
        wd = WeightDrop(rnn, ("weight_hh_l0", "weight_hh_l1"), p=0.3)
        assert wd(torch.randn(2, 5, 4))[0].shape == (2, 5, 6)

    def test_linear_is_drop_connect(self):
        torch.manual_seed(5)
        lin = nn.Linear(200, 100)
        with torch.no_grad():
            lin.weight.fill_(1.0)
            lin.bias.zero_()
        y = WeightDrop(lin, "weight", p=0.5)(torch.eye(200).repeat(2, 1))
        assert torch.equal(y[:200], y[200:]), "one mask for the whole batch"
        mask = y[:200].T != 0
        assert binomtest(int(mask.sum()), mask.numel(), 0.5).pvalue > 1e-6
        assert set(y.unique().tolist()) <= {0.0, 2.0}

    def test_under_torch_compile(self):
        torch._dynamo.reset()
        lstm = _lstm()
        wd = WeightDrop(lstm, p=0.5)
        compiled = torch.compile(wd)
        x = torch.randn(3, 5, 4)
        out = compiled(x)[0]
        out.sum().backward()
        assert out.shape == (3, 5, 6) and lstm.weight_hh_l0.grad is not None
        assert not torch.equal(out, lstm(x)[0])
        compiled.eval()
        assert torch.allclose(compiled(x)[0], lstm(x)[0], atol=1e-6)

    def test_repr_and_base(self):
        wd = WeightDrop(nn.GRU(2, 3), ["weight_hh_l0"], p=0.25)
        assert isinstance(wd, _DropoutBase)
        assert "WeightDrop(\n  p=0.25, weights=('weight_hh_l0',)" in repr(wd)

    def test_bad_arguments(self):
        with pytest.raises(TypeError, match="wraps an nn.Module, but got Tensor"):
            WeightDrop(torch.ones(3))
        with pytest.raises(ValueError, match="but got 'weight_hh'"):
            WeightDrop(nn.LSTM(2, 3), "weight_hh")
        with pytest.raises(ValueError, match="at least one"):
            WeightDrop(nn.LSTM(2, 3), [])
        with pytest.raises(ValueError, match="between 0 and 1"):
            WeightDrop(nn.LSTM(2, 3), p=1.2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
class TestOnCuda:
    # On CUDA the masks come from another random stream than on CPU: test what holds.
    def test_locked_dropout_values_and_sharing(self):
        torch.manual_seed(0)
        y = locked_dropout(torch.ones(64, 40, 16, device="cuda"), 0.3)
        assert y.device.type == "cuda"
        assert torch.equal(y, y[:, :1].expand_as(y))
        assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.7).item()}
        torch.manual_seed(0)
        assert torch.equal(
            y, locked_dropout(torch.ones(64, 40, 16, device="cuda"), 0.3)
        )

    def test_weight_drop_under_cudnn(self):
        lstm = _lstm().cuda()
        copy = _lstm().cuda()
        x = torch.randn(8, 40, 4, device="cuda")
        wd = WeightDrop(lstm, p=0.5)
        torch.manual_seed(1)
        out = wd(x)[0]
        out.sum().backward()
        torch.manual_seed(1)
        with torch.no_grad():
            copy.weight_hh_l0.copy_(dropout(lstm.weight_hh_l0, 0.5))
        assert torch.allclose(out, copy(x)[0], atol=1e-6)
        assert torch.equal(lstm.weight_hh_l0.grad == 0, copy.weight_hh_l0 == 0)
        assert torch.equal(wd.eval()(x)[0], lstm(x)[0])
