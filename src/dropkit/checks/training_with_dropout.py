"""Exercise checks for Chapter 3: training with dropout"""

import math

import numpy as np
import torch

from dropkit.checks._common import CheckFailed, _require, _passed

__all__ = ['check_epochs_to_reach', 'check_l2_penalty']


def check_epochs_to_reach(epochs_to_reach):
    """Check ``epochs_to_reach(val_acc, target)``: the first epoch, counting from 1, whose validation
    accuracy is at least ``target``, or ``None`` if no epoch reaches it."""
    cases = [
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.45, 3, "the first epoch at or above the target, counting from 1"),
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.5, 3, "an accuracy equal to the target reaches it (>=, not >)"),
        ([0.5, 0.1], 0.3, 1, "the first epoch counts as 1"),
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.55, 5, "the last epoch counts too"),
        ([0.2, 0.3], 0.9, None, "None when the target is never reached"),
    ]
    for val_acc, target, expected, rule in cases:
        got = epochs_to_reach(list(val_acc), target)
        if isinstance(got, (np.integer,)):
            got = int(got)
        if got == expected and (expected is not None or got is None):
            continue
        hint = ""
        if expected is not None and got == expected - 1:
            hint = " You count epochs from 0; the first epoch is epoch 1."
        elif expected is None:
            hint = " Return None, not a number, when no epoch reaches the target (np.argmax of all False is 0)."
        elif expected == 3 and target == 0.5 and got == 5:
            hint = " Use >= target: an epoch that exactly reaches it counts."
        raise CheckFailed(
            f"epochs_to_reach({val_acc}, {target}) returned {got!r}, but should return {expected!r}: {rule}.{hint}"
        )
    _passed()


def check_l2_penalty(l2_penalty):
    """Check ``l2_penalty(model)``: half the sum of squared weight matrices of the model's linear
    layers, biases excluded, as a scalar tensor that gradients flow through."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3))
    with torch.no_grad():
        for m in (model[1], model[4]):
            m.bias.fill_(3.0)  # large biases make "biases included" easy to see
    weights = (model[1].weight, model[4].weight)
    expected = sum((w.detach() ** 2).sum() for w in weights) / 2
    got = l2_penalty(model)
    _require(isinstance(got, torch.Tensor), f"l2_penalty must return a tensor, but returned {type(got).__name__}")
    _require(got.numel() == 1, f"l2_penalty must return a scalar, but returned shape {tuple(got.shape)}")
    _require(got.requires_grad, "the penalty must be differentiable: compute it from the parameters, without .detach() or .item()")
    with_biases = expected + sum((m.bias.detach() ** 2).sum() for m in (model[1], model[4])) / 2
    if torch.isclose(got.detach(), with_biases):
        raise CheckFailed("your penalty includes the biases: weight decay (d2l's l2_penalty) acts on the weights only")
    if torch.isclose(got.detach(), 2 * expected):
        raise CheckFailed("your penalty is twice the expected value: d2l's l2_penalty is sum(w ** 2) / 2")
    abs_sum = sum(w.detach().abs().sum() for w in weights)
    if torch.isclose(got.detach(), abs_sum) or torch.isclose(got.detach(), abs_sum / 2):
        raise CheckFailed("your penalty sums absolute values (L1); weight decay squares the weights (L2)")
    _require(
        torch.isclose(got.detach(), expected),
        f"l2_penalty returned {got.item():.4f}, but half the sum of the squared weights of the two linear layers "
        f"is {expected.item():.4f}",
    )
    got.backward()
    _require(
        torch.allclose(model[4].weight.grad, model[4].weight.detach()),
        "the gradient of the penalty with respect to a weight matrix W must be W itself",
    )
    _passed()
