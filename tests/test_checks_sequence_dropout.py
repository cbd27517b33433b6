"""Chapter 8's exercise checks pass right answers and catch the usual wrong ones."""

import pytest
import torch
from torch.nn import functional as F

from dropkit import checks, dropout, embedding_dropout, locked_dropout


def expect_fail(check, fn, match):
    with pytest.raises(checks.CheckFailed, match=match):
        check(fn)


def locked_time_first(x, p):  # unusual: through the time-first layout
    return locked_dropout(x.transpose(0, 1), p, batch_first=False).transpose(0, 1)


def locked_reseeds(x, p):
    torch.manual_seed(0)
    return locked_dropout(x, p)


def locked_in_place(x, p):
    if p == 1:
        return x.zero_()
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p)
    return x.mul_(mask).div_(1 - p)


class TestLockedDropout:
    def test_right(self, capsys):
        checks.check_locked_dropout(lambda x, p: locked_dropout(x, p))
        checks.check_locked_dropout(
            lambda x, p: dropout(x, p, noise_shape=(None, 1, None))
        )
        checks.check_locked_dropout(locked_time_first)
        assert capsys.readouterr().out.count("all checks passed") == 3

    @pytest.mark.parametrize(
        "fn,match",
        [
            (lambda x, p: dropout(x, p), "dropped parts of what must be dropped whole"),
            (
                lambda x, p: dropout(x, p, noise_shape=(1, 1, None)),
                "every sample of the batch the same mask",
            ),
            (lambda x, p: dropout(x, p, noise_shape=(None, 1, 1)), "axis 2"),
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

    @pytest.mark.parametrize(
        "fn,match",
        [
            (locked_reseeds, "resets torch's global random number generator"),
            (locked_in_place, "changed its argument x in place"),
        ],
        ids=["reseeds", "in-place"],
    )
    def test_wrong_more(self, fn, match):
        expect_fail(checks.check_locked_dropout, fn, match)


def word_gather(t, w, p):  # unusual: a keep bit per word, gathered per position
    keep = torch.rand(w.shape[0], device=w.device) >= p
    return torch.where(keep[t, None], F.embedding(t, w) / (1 - p), 0.0).to(w.dtype)


class TestWordDropout:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda t, w, p: embedding_dropout(t, w, p),
            lambda t, w, p: F.embedding(t, dropout(w, p, noise_shape=(None, 1))),
            word_gather,
        ],
        ids=["library", "noise-shape", "gather"],
    )
    def test_right(self, fn, capsys):
        checks.check_word_dropout(fn)
        assert "all checks passed" in capsys.readouterr().out

    def test_in_place_weight(self):
        def in_place(t, w, p):
            keep = w.new_empty(w.shape[0], 1).bernoulli_(1 - p)
            return F.embedding(t, w.mul_(keep / (1 - p) if p < 1 else keep))

        expect_fail(checks.check_word_dropout, in_place, "changed its argument weight")

    def test_mask_drawn_once(self):
        masks = {}

        def cached(t, w, p):
            if p not in masks:
                masks[p] = dropout(torch.ones(w.shape[0], 1), p)
            return F.embedding(t, w * masks[p].to(w))

        expect_fail(checks.check_word_dropout, cached, "drew the same mask")

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

        expect_fail(checks.check_word_dropout, reseeds, "resets torch's global")

    def test_keep_probability(self):
        expect_fail(
            checks.check_word_dropout,
            lambda t, w, p: embedding_dropout(t, w, 0.5 if p == 0.3 else p),
            "kept .* of 20000",
        )


def connect_matmul(x, w, b, p):  # unusual: x @ W^T with a where-built weight
    if p == 1:
        return x @ (w * 0).T + b
    kept = torch.where(torch.rand_like(w) >= p, w / (1 - p), torch.zeros_like(w))
    return x @ kept.T + b


def connect_in_place(x, w, b, p):  # WeightDrop done wrong: the weight itself changed
    return F.linear(x, w.mul_(dropout(torch.ones_like(w), p)), b)


class TestDropConnectLinear:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda x, w, b, p: F.linear(x, dropout(w, p), b),
            lambda x, w, b, p: F.linear(x, F.dropout(w, p), b),
            connect_matmul,
        ],
        ids=["dropkit", "F.dropout", "matmul"],
    )
    def test_right(self, fn, capsys):
        checks.check_drop_connect_linear(fn)
        assert "all checks passed" in capsys.readouterr().out

    def test_in_place_weight(self):
        expect_fail(
            checks.check_drop_connect_linear, connect_in_place, "changed its argument w"
        )

    def test_nan_gradient_at_one(self):
        def unguarded(x, w, b, p):
            kept = torch.where(torch.rand_like(w) >= p, w / (1 - p), 0.0)
            return F.linear(x, kept, b)

        expect_fail(checks.check_drop_connect_linear, unguarded, "gradient is NaN")

    def test_messages_describe_awd_lstm(self):
        # Wan et al.'s form masks the bias and draws per example; the messages must say
        # that the exercise asks for AWD-LSTM's form, not that Wan's is not DropConnect.
        with pytest.raises(checks.CheckFailed, match="AWD-LSTM's form") as info:
            checks.check_drop_connect_linear(
                lambda x, w, b, p: F.linear(x, dropout(w, p), dropout(b, p))
            )
        assert "Wan et al. mask the bias too" in str(info.value)

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

        expect_fail(
            checks.check_drop_connect_linear, per_example, "so does Wan et al.'s"
        )

    def test_same_mask_every_call(self):
        mask = {}

        def frozen(x, w, b, p):
            key = (tuple(w.shape), p)
            if key not in mask:
                mask[key] = dropout(torch.ones_like(w), p)
            return F.linear(x, w * mask[key], b)

        expect_fail(checks.check_drop_connect_linear, frozen, "two calls")


def manual_attention(q, k, v, p, training):  # unusual: written out, F.dropout on probs
    a = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
    return F.dropout(a, p, training) @ v


def scores_dropped(q, k, v, p, training):
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return F.dropout(s, p, training).softmax(-1) @ v


def heads_share_mask(q, k, v, p, training):
    a = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
    if training and p > 0:
        keep = torch.rand(a.shape[0], 1, *a.shape[2:]) >= p
        a = a * keep / (1 - p)
    return a @ v


def values_dropped(q, k, v, p, training):
    keep = torch.rand(*v.shape[:-1], 1) >= p if training else torch.ones(1)
    v = v * keep / (1 - p) if training and p > 0 else v
    return F.scaled_dot_product_attention(q, k, v)


def scale_by_dv(q, k, v, p, training):
    a = (q @ k.transpose(-2, -1) / v.shape[-1] ** 0.5).softmax(-1)
    return F.dropout(a, p, training) @ v


class TestAttentionDropout:
    def test_right(self, capsys):
        def attention(q, k, v, p, training):
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=p if training else 0.0
            )

        checks.check_attention_dropout(attention)
        checks.check_attention_dropout(manual_attention)
        assert capsys.readouterr().out.count("all checks passed") == 2

    @pytest.mark.parametrize(
        "fn,match",
        [
            (scores_dropped, "scores before the softmax"),
            (heads_share_mask, "every head got the same dropout mask"),
            (values_dropped, "dropped the values"),
            (scale_by_dv, "d_k = q.shape\\[-1\\]"),
        ],
        ids=["scores", "heads-share", "values", "scale-by-dv"],
    )
    def test_wrong(self, fn, match):
        expect_fail(checks.check_attention_dropout, fn, match)

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

        expect_fail(checks.check_attention_dropout, drops_output, "attention's output")


def r_drop_loss(a, b, y, alpha):
    ce = (F.cross_entropy(a, y) + F.cross_entropy(b, y)) / 2
    la, lb = a.log_softmax(-1), b.log_softmax(-1)
    kl_ab = F.kl_div(lb, la, log_target=True, reduction="batchmean")
    kl_ba = F.kl_div(la, lb, log_target=True, reduction="batchmean")
    return ce + alpha * (kl_ab + kl_ba) / 2


def r_drop_symmetric(a, b, y, alpha):  # unusual: KL12 + KL21 = sum (P1-P2)(logP1-logP2)
    la, lb = a.log_softmax(-1), b.log_softmax(-1)
    ce = (F.nll_loss(la, y) + F.nll_loss(lb, y)) / 2
    both = ((la.exp() - lb.exp()) * (la - lb)).sum(-1).mean()
    return ce + alpha / 2 * both


class TestRDropLoss:
    @pytest.mark.parametrize("fn", [r_drop_loss, r_drop_symmetric])
    def test_right(self, fn, capsys):
        checks.check_r_drop_loss(fn)
        assert "all checks passed" in capsys.readouterr().out

    def test_detached_pass(self):
        def detached(a, b, y, alpha):  # a stop-gradient on the second pass in the KL
            return r_drop_loss(a, b, y, 0) + alpha * (
                r_drop_loss(a, b.detach(), y, 1) - r_drop_loss(a, b.detach(), y, 0)
            )

        expect_fail(checks.check_r_drop_loss, detached, "gradient .* logits2")

    def test_mean_reduction(self):
        def mean_kl(a, b, y, al):
            la, lb = a.log_softmax(-1), b.log_softmax(-1)
            kl = F.kl_div(lb, la, log_target=True, reduction="mean") + F.kl_div(
                la, lb, log_target=True, reduction="mean"
            )
            return r_drop_loss(a, b, y, 0) + al * kl / 2

        expect_fail(checks.check_r_drop_loss, mean_kl, "batchmean")

    def test_log_of_softmax(self):
        def log_softmax_by_hand(a, b, y, al):
            pa, pb = a.softmax(-1), b.softmax(-1)
            kl = (pa * (pa.log() - pb.log())).sum(-1).mean()
            kl = kl + (pb * (pb.log() - pa.log())).sum(-1).mean()
            ce = (F.nll_loss(pa.log(), y) + F.nll_loss(pb.log(), y)) / 2
            return ce + al * kl / 2

        expect_fail(checks.check_r_drop_loss, log_softmax_by_hand, "use log_softmax")

    def test_item(self):
        expect_fail(
            checks.check_r_drop_loss,
            lambda a, b, y, al: torch.tensor(r_drop_loss(a, b, y, al).item()),
            "differentiable",
        )

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
