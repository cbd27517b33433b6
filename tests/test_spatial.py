"""Tests for dropkit.spatial: make_dropout and the ConvNet1d classifier of chapter 4."""

import pytest
import torch
from torch import nn

pytest.importorskip("d2l")
from dropkit import Dropout, SpatialDropout  # noqa: E402
from dropkit.spatial import DROPOUT_KINDS, ConvNet1d, make_dropout  # noqa: E402


class TestMakeDropout:
    @pytest.mark.parametrize(
        "kind,cls",
        [("none", nn.Identity), ("element", Dropout), ("spatial", SpatialDropout)],
    )
    def test_kinds(self, kind, cls):
        layer = make_dropout(kind, 0.3)
        assert type(layer) is cls
        if cls is not nn.Identity:
            assert layer.p == 0.3

    @pytest.mark.parametrize("kind", DROPOUT_KINDS)
    def test_p0_is_identity(self, kind):
        assert isinstance(make_dropout(kind, 0.0), nn.Identity)

    @pytest.mark.parametrize("kind", ["channel", "Spatial", None, 1])
    def test_bad_kind_names_value(self, kind):
        with pytest.raises(ValueError, match=f"but got {kind!r}"):
            make_dropout(kind, 0.2)

    def test_bad_p_raises(self):
        with pytest.raises(ValueError, match="but got 1.5"):
            make_dropout("element", 1.5)

    def test_spatial_drops_whole_channels(self):
        torch.manual_seed(0)
        y = make_dropout("spatial", 0.5)(torch.ones(8, 6, 10))
        assert ((y == 0).all(-1) | (y == 2).all(-1)).all()


class TestConvNet1d:
    @pytest.mark.parametrize("kind", DROPOUT_KINDS)
    def test_output_shape_and_layers(self, kind):
        torch.manual_seed(0)
        model = ConvNet1d(dropout=kind, p=0.2, channels=8)
        out = model(torch.randn(5, 1, 40))
        assert out.shape == (5, 10)
        expected = {"none": nn.Identity, "element": Dropout, "spatial": SpatialDropout}[
            kind
        ]
        assert type(model.net[2]) is expected and type(model.net[5]) is expected

    def test_eval_is_deterministic_train_is_not(self):
        torch.manual_seed(1)
        model = ConvNet1d(dropout="element", p=0.5, channels=8)
        x = torch.randn(16, 1, 40)
        model(x)  # materialise the lazy layer
        assert not torch.equal(model(x), model(x)), "training mode must drop"
        model.eval()
        assert torch.equal(model(x), model(x)), "eval mode must be deterministic"

    def test_one_sgd_step_lowers_loss_on_a_batch(self):
        torch.manual_seed(2)
        model = ConvNet1d(channels=8, lr=0.1)
        x, y = torch.randn(32, 1, 40), torch.randint(0, 10, (32,))
        model(x)
        opt = model.configure_optimizers()
        before = model.loss(model(x), y)
        for _ in range(5):
            opt.zero_grad()
            model.loss(model(x), y).backward()
            opt.step()
        assert model.loss(model(x), y) < before

    def test_hyperparameters_saved(self):
        model = ConvNet1d(dropout="spatial", p=0.1, channels=4, lr=0.3)
        assert (model.dropout, model.p, model.channels, model.lr) == (
            "spatial",
            0.1,
            4,
            0.3,
        )
