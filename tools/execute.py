"""Execute chapters top to bottom on a fresh kernel and store them with their outputs.

    python tools/execute.py chapters/NAME.ipynb ...
    make execute NB=chapters/NAME.ipynb

Like ``jupyter execute --inplace``, with the kernel in the chapter's folder (as nbval
runs it), but without nbclient's per-cell timestamps, which would change every diff and
which nothing reads.
"""

import sys
from pathlib import Path

import nbformat
import nbformat.validator
from nbclient import NotebookClient


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nb = nbformat.from_dict(
        nbformat.validator.normalize(nb)[1]
    )  # gives every cell the id that nbformat 4.5 requires
    client = NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[1:]:
        print(f"executing {name}", flush=True)
        execute(Path(name))
