"""A tiny supervised fastText language identifier for tests (OpenLID's layout, Flores labels).

Trained in a fresh process (about a second, one thread): fastText's training hits NaN in a
process where lingua has run, while its predictions there are unaffected.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Sequence

_TRAIN = (
    "import sys, fasttext\n"
    "fasttext.train_supervised(sys.argv[1], dim=8, epoch=20, lr=0.2, minn=2, maxn=4,"
    " bucket=10_000, thread=1, verbose=0).save_model(sys.argv[2])"
)


def train(folder: pathlib.Path, lines: Sequence[str]) -> pathlib.Path:
    """Trains on ``lines`` (``__label__<code> text``) and returns the model file in ``folder``.

    dim 8 and character 2-4-grams, as OpenLID uses character n-grams.
    """
    data, model = folder / "train.txt", folder / "lid.bin"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-c", _TRAIN, str(data), str(model)], check=True)
    return model
