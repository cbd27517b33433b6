"""A generator of the user's own under activation checkpointing (issue 30).

torch.utils.checkpoint, in both modes, restores only torch's default generators before
it recomputes a checkpointed forward during backward. With ``generator=`` a dropkit op
would draw that generator's next numbers there, and backward would use another mask:
every op that takes a generator refuses, during the recomputation, with the cause and
the fix. Without one (or with torch's default generator) the gradients are exact.
"""

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import dropkit
from dropkit.drop import _in_backward

# op name -> f(t, generator) applying it to a (32, 64) activation
OPS = {
    "dropout": lambda t, g: dropkit.dropout(t, 0.5, generator=g),
    "spatial_dropout": lambda t, g: dropkit.spatial_dropout(
        t.view(32, 8, 8), 0.5, generator=g
    ).view(32, 64),
    "drop_path": lambda t, g: dropkit.drop_path(t, 0.5, generator=g),
    "lowmem_dropout": lambda t, g: dropkit.lowmem_dropout(
        t, 0.5, generator=g, compile=False
    ),
    "drop_path_residual": lambda t, g: dropkit.drop_path_residual(
        t, torch.tanh, 0.5, generator=g
    ),
    "alpha_dropout": lambda t, g: dropkit.alpha_dropout(t, 0.5, generator=g),
    "feature_alpha_dropout": lambda t, g: dropkit.feature_alpha_dropout(
        t.view(32, 8, 8), 0.5, generator=g
    ).view(32, 64),
    "gaussian_dropout": lambda t, g: dropkit.gaussian_dropout(t, 0.5, generator=g),
    "drop_block2d": lambda t, g: dropkit.drop_block2d(
        t.view(32, 1, 8, 8), 0.5, 3, generator=g
    ).view(32, 64),
    "drop_block3d": lambda t, g: dropkit.drop_block3d(
        t.view(32, 1, 4, 4, 4), 0.5, 3, generator=g
    ).view(32, 64),
    "locked_dropout": lambda t, g: dropkit.locked_dropout(
        t.view(32, 8, 8), 0.5, generator=g
    ).view(32, 64),
    "embedding_dropout": lambda t, g: (
        t
        + dropkit.embedding_dropout(
            torch.arange(32) % 10, torch.ones(10, 64), 0.5, generator=g
        )
    ),
}


def network(op, generator):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(16, 64), torch.nn.Linear(64, 4)

    def f(t):
        return lin2(OPS[op](torch.relu(lin1(t)), generator))

    return f, [*lin1.parameters(), *lin2.parameters()]


def gradients(op, generator, reentrant=None):
    f, params = network(op, generator)
    x = torch.randn(32, 16, requires_grad=True)
    torch.manual_seed(1)
    if isinstance(generator, torch.Generator) and generator is not (
        torch.default_generator
    ):
        generator.manual_seed(1)
    run = (
        f if reentrant is None else lambda t: checkpoint(f, t, use_reentrant=reentrant)
    )
    run(x).square().sum().backward()
    return [x.grad, *(q.grad for q in params)]


@pytest.mark.parametrize("reentrant", [True, False])
@pytest.mark.parametrize("op", list(OPS))
class TestCheckpoint:
    def test_own_generator_is_refused_naming_cause_and_fix(self, op, reentrant):
        gradients(op, torch.Generator(), None)  # outside checkpoint: fine
        with pytest.raises(
            RuntimeError, match=f"^{op} was called with generator="
        ) as e:
            gradients(op, torch.Generator(), reentrant)
        message = str(e.value)
        assert "torch.utils.checkpoint" in message and "generator=None" in message

    @pytest.mark.parametrize("generator", [None, torch.default_generator])
    def test_default_generator_gives_the_plain_runs_gradients(
        self, op, reentrant, generator
    ):
        plain = gradients(op, generator)
        ckpt = gradients(op, generator, reentrant)
        for a, b in zip(plain, ckpt):
            assert torch.equal(a, b), f"checkpoint(use_reentrant={reentrant}) changed"


def test_in_backward_is_true_only_during_a_backward_pass():
    seen = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(_in_backward())
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            seen.append(_in_backward())
            return grad

    x = torch.ones(2, requires_grad=True)
    Probe.apply(x).sum().backward()
    assert seen == [False, True] and not _in_backward()


def test_bad_generator_is_a_type_error_naming_the_op():
    with pytest.raises(TypeError, match="^drop_path: generator must be a torch.Gen"):
        dropkit.drop_path(torch.ones(4, 2), 0.5, generator=3)
