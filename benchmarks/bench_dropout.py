"""Time dropout against x.clone(), and DropPath by masking vs skipping, in one process.

    python benchmarks/bench_dropout.py                  # 2^18 ... 2^24, CPU, 2 threads
    python benchmarks/bench_dropout.py --device cuda    # the same on a GPU

Every candidate is timed in interleaved rounds (each round times all of them in turn),
and the tables give medians of the per-round ratios to ``x.clone()`` with their
interquartile range.

Warm memory is the primary measure. By default glibc gives large allocations fresh pages
from ``mmap`` and returns them on ``free``, so a call that allocates its output pays a
page fault per 4 KiB page, often more than the copy itself. A CPU training loop pays it
too (PyTorch's CPU allocator takes every tensor from malloc); only a caching allocator
(PyTorch's on CUDA) or a malloc that keeps freed memory avoids it. The script first
times page faults (``cold``: filling a fresh tensor vs an existing one), then calls
:func:`dropkit.bench.warm_memory`, which sets what ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647`` would set (glibc keeps freed memory up to a 2 GiB
trim threshold, mallopt's int limit), and times the rest, after warm-up calls. No
number here is asserted by a test.
"""

import argparse
import statistics
import sys

import torch

from dropkit.bench import (
    drop_path_timings,
    dropout_table,
    interleaved_ms,
    ratio,
    warm_memory,
)

NAMES = ("F.dropout", "compiled F.dropout", "dropkit.dropout", "lowmem_dropout")


def page_faults(sizes, repeat, device):
    print(
        "\ncold memory: filling a fresh tensor vs filling an existing one (page faults)"
    )
    print(f"{'size':>5} {'fresh ms':>9} {'reused ms':>10} {'ratio':>6}")
    for n in sizes:
        buf = torch.empty(n, device=device)
        fns = {
            "fresh": lambda n=n: torch.empty(n, device=device).fill_(1),
            "reused": lambda buf=buf: buf.fill_(1),
        }
        t = interleaved_ms(fns, repeat, device=device)
        r, _ = ratio(t, "fresh", "reused")
        fresh, reused = statistics.median(t["fresh"]), statistics.median(t["reused"])
        size = f"2^{n.bit_length() - 1}"
        print(f"{size:>5} {fresh:9.2f} {reused:10.2f} {r:6.2f}")


def dropouts(sizes, repeat, device):
    print(
        "\nwarm memory: time as a multiple of x.clone() "
        "(median of per-round ratios ± IQR)"
    )
    head = " ".join(f"{n:>20}" for n in NAMES)
    print(f"{'size':>5} {'clone ms':>9} {'GB/s':>6}  {head}")
    for row in dropout_table(sizes, repeat=repeat, device=device):
        n, ms = row["elements"], row["clone ms"]
        gbs = 2 * 4 * n / ms / 1e6  # read and write, fp32
        for suffix, label in (("", f"2^{n.bit_length() - 1}"), (" fwd+bwd", "")):
            first = f"{ms:9.3f} {gbs:6.1f}" if not suffix else f"{'fwd+bwd':>16}"
            cells = " ".join(
                f"{row[k + suffix][0]:13.2f} ±{row[k + suffix][1]:5.2f}" for k in NAMES
            )
            print(f"{label:>5} {first}  {cells}")
        share = 1 / row["lowmem_dropout"][0]
        print(
            f"{'':>5} {'':>16}  lowmem forward reaches {share:.0%} of clone's bandwidth"
        )


def vit(repeat, device):
    from dropkit.vit import ViTBlock

    # ViT-Tiny width; 64 images of 64 patches and a class token.
    x = torch.randn(64, 65, 192, device=device)

    def make(p, skip):
        return ViTBlock(192, 3, drop_path=p, skip_dropped=skip).to(device)

    print(f"\nViT block (dim 192, 3 heads) on {tuple(x.shape)}, forward+backward")
    head = ("p", 5), ("masking ms", 11), ("skipping ms", 12), ("speed-up", 13)
    head += ("ideal", 6), ("of ideal", 9)
    print(" ".join(f"{name:>{width}}" for name, width in head))
    for p in (0.25, 0.5):
        r = drop_path_timings(make, x, p, repeat=repeat, device=device)
        print(
            f"{p:5.2f} {r['masking']:11.2f} {r['skipping']:12.2f} "
            f"{r['speed-up']:6.2f} ±{r['spread']:5.2f} "
            f"{r['ideal']:6.2f} {r['speed-up'] / r['ideal']:9.0%}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-exp", type=int, default=18, help="smallest size is 2**MIN_EXP elements"
    )
    parser.add_argument(
        "--max-exp", type=int, default=24, help="largest size is 2**MAX_EXP elements"
    )
    parser.add_argument(
        "--step", type=int, default=2, help="exponent step between sizes"
    )
    parser.add_argument(
        "--repeat", type=int, default=15, help="interleaved rounds per size"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-vit", action="store_true", help="skip the DropPath table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [2**e for e in range(args.min_exp, args.max_exp + 1, args.step)]
    print(
        f"torch {torch.__version__}, {args.threads} threads, {args.device}, fp32, "
        f"p = 0.5, {args.repeat} rounds"
    )
    page_faults(sizes, args.repeat, args.device)
    print("\nwarm_memory():", warm_memory())
    dropouts(sizes, args.repeat, args.device)
    if not args.no_vit:
        vit(args.repeat, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
