"""Every compiled path of dropkit gives correct values under each CPU vector instruction
set that inductor generates code for: AVX-512, AVX2 and none (ATEN_CPU_CAPABILITY=
avx512, avx2, default), one subprocess per setting.

The settings run one after the other on one shared, fresh inductor cache: torch 2.13
caches the C++ it generated under a key that leaves the instruction set out, so code
written for AVX-512 was reused under AVX2 and left half of lowmem_dropout's output
unwritten (issue 30). The library's own kernels name the vector width
(``dropkit.lowmem._isa_options``) and must come out right in every setting. A model
the user compiles with torch.compile's defaults has no such protection (nor has any
torch model), so that check runs without inductor's caches.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="needs an x86-64 CPU with AVX2",
)

SETTINGS = ["avx512", "avx2", "default"]

CHECKS = textwrap.dedent(
    """
    import os, sys, warnings
    import torch
    from torch.nn import functional as F
    from scipy.stats import binomtest

    warnings.simplefilter("error", RuntimeWarning)  # a fallback is a failure here
    torch.set_num_threads(2)
    import dropkit.lowmem as lowmem
    from dropkit.bench import _compiled
    from dropkit.lowmem import LowMemDropout, lowmem_dropout

    print("capability", torch.backends.cpu.get_cpu_capability())
    scale = 2**16 / (2**16 - round(0.3 * 2**16))
    # lowmem_dropout's kernel (every contiguous tensor takes this path), odd sizes,
    # forward and backward, against the eager computation
    for n in (1000, 4099, 1 << 16):
        x = torch.randn(n, requires_grad=True)
        torch.manual_seed(n)
        y = lowmem_dropout(x, 0.3)
        torch.manual_seed(n)
        eager = lowmem_dropout(x.detach(), 0.3, compile=False)
        assert torch.equal(y, eager), f"compiled != eager at n={n}"
        y.backward(torch.ones_like(y))
        assert torch.equal(x.grad, (y != 0).float() * scale), f"backward at n={n}"
    assert lowmem._kernels[("cpu", torch.float32)] is not None
    # dropkit.bench's compiled F.dropout: values 0 or 2 at the stated rate
    x = torch.ones(1 << 16)
    y = _compiled(lambda t: F.dropout(t, 0.5), x)(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0}, "compiled F.dropout: garbage"
    assert binomtest(int((y != 0).sum()), y.numel(), 0.5).pvalue > 1e-9
    # a compiled model containing LowMemDropout, forward and backward; not cached
    torch._inductor.config.fx_graph_cache = False
    torch._functorch.config.enable_autograd_cache = False
    model = torch.compile(LowMemDropout(0.3))
    x = torch.randn(4099, requires_grad=True)
    torch.manual_seed(0)
    y = model(x)
    y.backward(torch.ones_like(y))
    kept = y != 0
    assert torch.equal(y[kept], x.detach()[kept] * scale)
    assert torch.equal(x.grad, kept.float() * scale), "compiled model: backward"
    assert binomtest(int(kept.sum()), y.numel(), 0.7).pvalue > 1e-9
    torch.manual_seed(0)
    assert torch.equal(model(x), y), "compiled model: not reproducible"
    print("ok")
    """
)


def run(setting, cache):
    env = dict(os.environ, ATEN_CPU_CAPABILITY=setting, TORCHINDUCTOR_CACHE_DIR=cache)
    env["OMP_NUM_THREADS"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", CHECKS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0 and out.stdout.endswith("ok\n"), (
        f"ATEN_CPU_CAPABILITY={setting}: {out.stdout}\n{out.stderr[-3000:]}"
    )
    return out.stdout


def test_every_setting_on_one_shared_cache(tmp_path):
    """Each setting reads the inductor cache that the settings before it wrote."""
    for setting in SETTINGS:
        run(setting, str(tmp_path))
