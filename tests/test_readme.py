"""The README's Python example: its train/test split is stratified, and what its comments state
holds for the defaults (checked without training; the example itself ran as written, 12 s)."""

import os

import numpy as np

from ksparse.config import AutoencoderConfig
from ksparse.kernels.encode import alpha_k

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _example():
    text = open(README, encoding="utf-8").read()
    return text.split("## Python\n\n```python\n", 1)[1].split("```", 1)[0]


def test_readme_example_splits_each_class_in_proportion():
    # the split was not stratified: 7.6 test images off a class's share (of 450) with random_state=0
    code = _example()
    head = code.split("\nae = ", 1)[0]  # the imports, the data and the split: no training
    scope = {}
    exec(head, scope)
    y, y_test = scope["y"], scope["y_test"]
    expected = np.bincount(y) * len(y_test) / len(y)
    assert np.abs(np.bincount(y_test) - expected).max() < 1
    assert "stratify=y" in head


def test_readme_example_states_the_defaults():
    code, defaults = _example(), AutoencoderConfig()
    ak = alpha_k(defaults.k, defaults.alpha, defaults.n_hidden)
    assert f"n_hidden={defaults.n_hidden}, k={defaults.k}, alpha={defaults.alpha:g}, " \
           f"max_iter={defaults.max_iter}" in code
    assert f"(N, {defaults.n_hidden}) features, round(alpha k) = {ak} nonzero per row" in code
    assert f"({defaults.n_hidden}, 64) atoms as rows, {defaults.max_iter} epochs run" in code
