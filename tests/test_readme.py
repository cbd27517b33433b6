"""The README's usage example runs as printed."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def test_usage_example_runs():
    text = README.read_text()
    section = text[text.index("## Using `dropkit` on its own") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16 * 32 * 32, 10), torch.nn.Dropout(0.5)
    )
    namespace = {"model": model}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["probs"].shape == (8, 10)
    assert namespace["mi"].shape == (8,)
    assert isinstance(namespace["rnn"], torch.nn.Module)  # ran to the end
