"""The second CPU dispatch setting of the test command really changes float results
here.

`make chapters` runs every chapter twice: as is, and under CPU_DISPATCH_2 (Makefile),
which makes ATen, MKL and oneDNN take their baseline kernels. That second run only
proves something if those kernels round differently from the native ones on this
machine: these tests check that they do.
"""

import os
import subprocess
import sys

import pytest

# The same setting as the Makefile's CPU_DISPATCH_2.
SECOND = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
}

PROBE = """
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(4096, 257)
w = torch.randn(257, 64)
mask = torch.empty(4096, 257).bernoulli_(0.7)
y = torch.nn.functional.gelu((x * mask) @ w).softmax(-1).log()
print(torch.backends.cpu.get_cpu_capability())
print(mask.sum().item(), x.sum().item(), y.sum().item())
"""


def probe(extra_env):
    env = {k: v for k, v in os.environ.items() if k not in SECOND}
    env.update(extra_env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    capability, numbers = out.stdout.splitlines()
    return capability, numbers.split()


def test_second_setting_changes_kernels_and_floats():
    native_cap, native = probe({})
    if native_cap == "DEFAULT":
        pytest.skip(
            "this CPU runs ATen's default kernels already: the two runs are the same"
        )
    second_cap, second = probe(SECOND)
    assert second_cap == "DEFAULT", (
        f"ATEN_CPU_CAPABILITY=default was not honoured: {second_cap}"
    )
    # The random streams are the same (the chapters' printed masks are portable)...
    assert native[0] == second[0], (
        f"the seeded mask differs between dispatch settings: {native[0]} vs {second[0]}"
    )
    # ...but float work rounds differently, so the second run tests the claims, not the
    # digits.
    assert native[1:] != second[1:], (
        f"{native_cap} and DEFAULT kernels gave identical float results {native[1:]}: "
        "the second "
        "chapter run would test nothing new on this machine"
    )
