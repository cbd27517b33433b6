"""Time dropout variants against x.clone(), and DropPath by masking vs skipping, in one process.

    python benchmarks/bench_dropout.py                # sizes 2^16 ... 2^24, CPU, 2 threads
    python benchmarks/bench_dropout.py --device cuda  # the same on a GPU

Prints medians after warm-up and their ratios; no number here is asserted by a test.
"""

import sys

from dropkit.bench import main

if __name__ == "__main__":
    sys.exit(main())
