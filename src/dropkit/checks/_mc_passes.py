"""Chapter 2's mc_predict check: its test model (BatchNorm, then one dropout module of
every family) and the hooks that record every pass through it, so that the check can
compare a learner's answer with the mean softmax of the passes it ran, however they were
batched or ordered."""

import torch

from dropkit.checks._common import _require


def _dropout_types():
    from dropkit.drop import _DropoutBase

    return (torch.nn.modules.dropout._DropoutNd, _DropoutBase)


def _bn_dropout_model():
    """BatchNorm, then one dropout module of every family: torch's and dropkit's."""
    from torch import nn

    import dropkit

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.5),  # 3: torch
        nn.Linear(16, 16),
        dropkit.Dropout(0.2),  # 5: dropkit
        nn.AlphaDropout(0.2),  # 6: torch, not an nn.Dropout
        dropkit.GaussianDropout(0.2),  # 7: dropkit
        dropkit.DropPath(0.2),  # 8: dropkit
        nn.Linear(16, 3),
    )
    model.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        model(torch.randn(32, 6))
    return model


def _family(module):
    owner = "dropkit" if type(module).__module__.startswith("dropkit") else "torch"
    return f"{owner} {type(module).__name__}"


class _Passes:
    """Hooks that record, during a call, each dropout and BatchNorm module's training
    flag and every pass through the model: the rows entering its first layer and the
    rows leaving its last."""

    def __init__(self, model):
        self.model = model
        self.modes = {
            name: set()
            for name, m in model.named_modules()
            if isinstance(m, (*_dropout_types(), torch.nn.modules.batchnorm._BatchNorm))
        }
        self.inputs, self.outputs = [], []

    def __enter__(self):
        model = self.model
        self.hooks = [
            m.register_forward_pre_hook(
                lambda mod, inp, name=name: self.modes[name].add(mod.training)
            )
            for name, m in model.named_modules()
            if name in self.modes
        ]
        self.hooks.append(
            model[0].register_forward_pre_hook(
                lambda mod, inp: self.inputs.append(inp[0].detach().double())
            )
        )
        self.hooks.append(
            model[-1].register_forward_hook(
                lambda mod, inp, out: self.outputs.append(out.detach().double())
            )
        )
        return self

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()


def _mean_of_passes(passes, x, k, call):
    """The mean softmax over the recorded passes, per row of x, whatever order or
    batching the passes used (each recorded row is matched to the row of x it came
    from); fails unless every row of x went through exactly k passes."""
    xs = x.detach().double()
    total = torch.zeros(len(xs), passes.outputs[0].shape[-1], dtype=torch.float64)
    logits = torch.zeros_like(total)
    count = torch.zeros(len(xs), dtype=torch.int64)
    per_row = [[] for _ in range(len(xs))]
    for inp, out in zip(passes.inputs, passes.outputs):
        inp, out = inp.reshape(-1, xs.shape[1]), out.reshape(-1, total.shape[1])
        dist, row = torch.cdist(inp, xs).min(dim=1)
        _require(
            bool((dist < 1e-4).all()),
            f"{call} ran the model on inputs that are not rows of x",
        )
        total.index_add_(0, row, out.softmax(-1))
        logits.index_add_(0, row, out)
        count += torch.bincount(row, minlength=len(xs))
        for r, o in zip(row.tolist(), out):
            per_row[r].append(o)
    passes_seen = count.double().mean().item()
    _require(
        bool((count == k).all()),
        f"{call} ran {passes_seen:g} passes per input on average"
        + (
            f" (from {int(count.min())} to {int(count.max())})"
            if count.min() != count.max()
            else ""
        )
        + f", not k = {k}. Run exactly k passes and average them.",
    )
    first = [torch.stack(o) for o in per_row[:8]]
    _require(
        any(not torch.equal(o[0], o[j]) for o in first for j in range(1, len(o))),
        f"the {k} passes of {call} gave identical outputs: each pass must draw fresh "
        "dropout masks (no reseeding between passes)",
    )
    return total / k, (logits / k).softmax(-1)
