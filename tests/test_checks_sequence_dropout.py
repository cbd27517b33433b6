"""Chapter 8's exercise checks pass right answers and catch the usual wrong ones."""

import pytest
import torch
from torch.nn import functional as F

from dropkit import checks, dropout, embedding_dropout, locked_dropout


def expect_fail(check, fn, match):
    with pytest.raises(checks.CheckFailed, match=match):
        check(fn)


class TestLockedDropout:
    def test_right(self, capsys):
        checks.check_locked_dropout(lambda x, p: locked_dropout(x, p))
        checks.check_locked_dropout(
            lambda x, p: dropout(x, p, noise_shape=(None, 1, None))
        )
        assert capsys.readouterr().out.count("all checks passed") == 2

    @pytest.mark.parametrize(
        "fn,match",
        [
            (lambda x, p: dropout(x, p), "dropped parts of what must be dropped whole"),
            (
                lambda x, p: dropout(x, p, noise_shape=(1, 1, None)),
                "one mask for every sample",
            ),
            (lambda x, p: dropout(x, p, noise_shape=(None, 1, 1)), "along axis 2"),
            (lambda x, p: dropout(x, 1 - p, noise_shape=(None, 1, None)), "at p=0"),
            (
                lambda x, p: (
                    x * x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p)
                ),
                "rescale",
            ),
        ],
        ids=["naive", "shared-batch", "token", "keep-prob", "no-scale"],
    )
    def test_wrong(self, fn, match):
        expect_fail(checks.check_locked_dropout, fn, match)


class TestWordDropout:
    def test_right(self, capsys):
        checks.check_word_dropout(lambda t, w, p: embedding_dropout(t, w, p))
        assert "all checks passed" in capsys.readouterr().out

    def test_token_dropout(self):
        expect_fail(
            checks.check_word_dropout,
            lambda t, w, p: dropout(F.embedding(t, w), p, noise_shape=(None, None, 1)),
            "token dropout",
        )

    def test_element_dropout_of_the_matrix(self):
        expect_fail(
            checks.check_word_dropout,
            lambda t, w, p: F.embedding(t, dropout(w, p)),
            "single entries",
        )

    def test_no_scaling(self):
        def unscaled(t, w, p):
            return F.embedding(t, w * w.new_empty(w.shape[0], 1).bernoulli_(1 - p))

        expect_fail(checks.check_word_dropout, unscaled, "rescale")

    def test_nan_at_p1(self):
        def nan_at_one(t, w, p):
            keep = w.new_empty(w.shape[0], 1).bernoulli_(1 - p)
            return F.embedding(t, w.div(1 - p) * keep)

        expect_fail(checks.check_word_dropout, nan_at_one, "NaN")

    def test_reseeding(self):
        def reseeds(t, w, p):
            torch.manual_seed(0)
            return embedding_dropout(t, w, p)

        expect_fail(checks.check_word_dropout, reseeds, "same words in four calls")

    def test_keep_probability(self):
        expect_fail(
            checks.check_word_dropout,
            lambda t, w, p: embedding_dropout(t, w, 0.5 if p == 0.3 else p),
            "kept .* of 20000",
        )


class TestDropConnectLinear:
    def test_right(self, capsys):
        checks.check_drop_connect_linear(
            lambda x, w, b, p: F.linear(x, dropout(w, p), b)
        )
        assert "all checks passed" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "fn,match",
        [
            (
                lambda x, w, b, p: dropout(F.linear(x, w, b), p),
                "at p=1|different outputs",
            ),
            (
                lambda x, w, b, p: F.linear(dropout(x, p), w, b),
                "at p=1|different outputs",
            ),
            (
                lambda x, w, b, p: F.linear(x, dropout(w, p, noise_shape=(None, 1)), b),
                "rows",
            ),
            (
                lambda x, w, b, p: F.linear(x, dropout(w, p, noise_shape=(1, None)), b),
                "columns",
            ),
            (
                lambda x, w, b, p: F.linear(x, dropout(w, p), dropout(b, p)),
                "bias alone",
            ),
            (
                lambda x, w, b, p: F.linear(x, w * (torch.rand_like(w) > p), b),
                "1/\\(1-p\\)",
            ),
        ],
        ids=["outputs", "inputs", "rows", "columns", "bias", "no-scale"],
    )
    def test_wrong(self, fn, match):
        expect_fail(checks.check_drop_connect_linear, fn, match)

    def test_per_example_masks(self):
        def per_example(x, w, b, p):  # a fresh weight mask for every row of the batch
            return torch.stack([F.linear(r, dropout(w, p), b) for r in x])

        expect_fail(checks.check_drop_connect_linear, per_example, "different outputs")

    def test_same_mask_every_call(self):
        mask = {}

        def frozen(x, w, b, p):
            key = (tuple(w.shape), p)
            if key not in mask:
                mask[key] = dropout(torch.ones_like(w), p)
            return F.linear(x, w * mask[key], b)

        expect_fail(checks.check_drop_connect_linear, frozen, "two calls")


class TestAttentionDropout:
    def test_right(self, capsys):
        def attention(q, k, v, p, training):
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=p if training else 0.0
            )

        checks.check_attention_dropout(attention)
        assert "all checks passed" in capsys.readouterr().out

    def test_always_dropping(self):
        expect_fail(
            checks.check_attention_dropout,
            lambda q, k, v, p, training: F.scaled_dot_product_attention(
                q, k, v, dropout_p=p
            ),
            "evaluation",
        )

    def test_never_dropping(self):
        expect_fail(
            checks.check_attention_dropout,
            lambda q, k, v, p, training: F.scaled_dot_product_attention(q, k, v),
            "in training",
        )

    def test_unscaled_manual_attention(self):
        def manual(q, k, v, p, training):
            a = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
            if training:
                a = a * (torch.rand_like(a) > p)
            return a @ v

        expect_fail(checks.check_attention_dropout, manual, "scaled by 1/\\(1-p\\)")

    def test_dropping_values_not_probabilities(self):
        def drops_output(q, k, v, p, training):
            return dropout(F.scaled_dot_product_attention(q, k, v), p, training)

        expect_fail(checks.check_attention_dropout, drops_output, "scaled|kept")


def r_drop_loss(a, b, y, alpha):
    ce = (F.cross_entropy(a, y) + F.cross_entropy(b, y)) / 2
    la, lb = a.log_softmax(-1), b.log_softmax(-1)
    kl_ab = F.kl_div(lb, la, log_target=True, reduction="batchmean")
    kl_ba = F.kl_div(la, lb, log_target=True, reduction="batchmean")
    return ce + alpha * (kl_ab + kl_ba) / 2


class TestRDropLoss:
    def test_right(self, capsys):
        checks.check_r_drop_loss(r_drop_loss)
        assert "all checks passed" in capsys.readouterr().out

    def kl(self, a, b):  # KL(P_a || P_b), batch mean
        return F.kl_div(
            b.log_softmax(-1), a.log_softmax(-1), log_target=True, reduction="batchmean"
        )

    def test_one_sided(self):
        expect_fail(
            checks.check_r_drop_loss,
            lambda a, b, y, al: r_drop_loss(a, b, y, 0) + al * self.kl(a, b),
            "only KL",
        )

    def test_no_half(self):
        expect_fail(
            checks.check_r_drop_loss,
            lambda a, b, y, al: r_drop_loss(a, b, y, 2 * al),
            "without the 1/2",
        )

    def test_summed_cross_entropy(self):
        def summed(a, b, y, al):
            return r_drop_loss(a, b, y, al) + r_drop_loss(a, b, y, 0)

        expect_fail(checks.check_r_drop_loss, summed, "identical passes|sum of the two")

    def test_probabilities_instead_of_log(self):
        def probs(a, b, y, al):  # kl_div fed probabilities: a wrong value
            pa, pb = a.softmax(-1), b.softmax(-1)
            kl = F.kl_div(pb, pa, reduction="batchmean") + F.kl_div(
                pa, pb, reduction="batchmean"
            )
            return r_drop_loss(a, b, y, 0) + al * kl / 2

        expect_fail(checks.check_r_drop_loss, probs, "expected|identical")

    def test_not_a_scalar(self):
        expect_fail(
            checks.check_r_drop_loss,
            lambda a, b, y, al: F.cross_entropy(a, y, reduction="none"),
            "scalar",
        )
