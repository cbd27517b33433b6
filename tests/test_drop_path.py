"""drop_path / DropPath and ViTBlock on CUDA (chapter 5); skipped without a GPU.

On CPU, drop_path equals timm's drop_path and torchvision's stochastic_depth bit for bit
under one seed (tests/test_vit.py). On CUDA the book promises less, and this file tests
what it does promise: the keep rate, kept values exactly 0 or 1/(1-p), the same masks
from the same seed, and a ViTBlock that is deterministic in eval mode and agrees with
timm's Block.
"""

import pytest
import torch
from scipy.stats import binomtest

from dropkit import DropPath, ViTBlock, drop_path

ALPHA = 1e-9  # false-alarm probability of each statistical test
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
class TestDropPathCUDA:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_values_and_keep_rate(self, dtype):
        torch.manual_seed(0)
        n, p = 200_000, 0.3
        y = drop_path(torch.ones(n, 4, device="cuda", dtype=dtype), p)
        assert y.device.type == "cuda" and y.dtype == dtype
        rows = y.reshape(n, -1)
        assert torch.equal(rows, rows[:, :1].expand_as(rows)), (
            "a sample was partly kept"
        )
        scale = torch.tensor(1 / (1 - p), dtype=dtype).item()
        assert set(rows[:, 0].unique().tolist()) == {0.0, scale}
        kept = int((rows[:, 0] != 0).sum())
        assert binomtest(kept, n, 1 - p).pvalue > ALPHA, f"kept {kept} of {n} at p={p}"

    def test_same_seed_same_mask(self):
        x = torch.randn(64, 5, device="cuda")
        torch.manual_seed(1)
        a = drop_path(x, 0.5)
        torch.manual_seed(1)
        assert torch.equal(a, drop_path(x, 0.5))
        g = torch.Generator(device="cuda")
        b = drop_path(x, 0.5, generator=g.manual_seed(2))
        assert torch.equal(b, drop_path(x, 0.5, generator=g.manual_seed(2)))

    def test_p1_zeros_and_eval_identity(self):
        x = torch.randn(8, 3, device="cuda", requires_grad=True)
        y = drop_path(x, 1.0)
        y.sum().backward()
        assert torch.equal(y, torch.zeros_like(y)) and not torch.isnan(x.grad).any()
        assert DropPath(0.5).eval()(x) is x

    def test_same_mask_as_timm(self):
        # Both draw x.new_empty((N, 1, ...)).bernoulli_(keep): the same CUDA kernel.
        timm = pytest.importorskip("timm")
        x = torch.randn(128, 7, device="cuda")
        torch.manual_seed(3)
        a = drop_path(x, 0.4)
        torch.manual_seed(3)
        assert torch.equal(a, timm.layers.drop_path(x, 0.4, training=True))


@cuda
class TestViTBlockCUDA:
    def test_eval_deterministic_with_attention_dropout(self):
        torch.manual_seed(4)
        block = (
            ViTBlock(64, 4, attn_drop=0.5, proj_drop=0.5, drop_path=0.5).cuda().eval()
        )
        x = torch.randn(8, 33, 64, device="cuda")
        assert torch.equal(block(x), block(x))
        block.train()
        assert not torch.equal(block(x), block(x))

    def test_matches_timm_block(self):
        timm = pytest.importorskip("timm")
        torch.manual_seed(5)
        kwargs = dict(attn_drop=0.1, proj_drop=0.1, drop_path=0.1)
        theirs = timm.models.vision_transformer.Block(64, 4, **kwargs).cuda().eval()
        ours = ViTBlock(64, 4, **kwargs).cuda().eval()
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(8, 33, 64, device="cuda")
        # The same kernels in the same order; on a GPU SDPA may pick among several
        # kernels, so ask only for agreement to float32 rounding.
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
