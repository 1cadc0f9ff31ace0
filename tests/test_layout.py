"""The package's layers, bottom to top (docs/layout.md): no module imports from a layer above it."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "ksparse"

# bottom (0) to top; a module's layer is that of its longest matching prefix
LAYERS = {
    "ksparse": 0,               # the package itself: __version__ (its lazy __getattr__ is exempt)
    "ksparse.argparsing": 0,    # argparse that names the closest option to an unknown one
    "ksparse.backend": 0,
    "ksparse.io": 0,
    "ksparse.blockio": 0,       # .npy/.npz written one block of rows at a time
    "ksparse.config": 0,
    "ksparse.errors": 0,
    "ksparse.interrupts": 0,
    "ksparse.streams": 0,       # progress output whose reader may go (| head)
    "ksparse.nn": 1,            # the math: forward/backward pairs, Eq. (11), schedules
    "ksparse.kernels": 2,       # the same math on the support only, compiled
    "ksparse.training": 3,      # steps, the epoch loop, checkpoints, fine-tuning
    "ksparse.parallel": 3,      # Dask: encoding of Dask arrays, data-parallel steps
    "ksparse.estimators": 4,    # scikit-learn estimators
    "ksparse.testing": 4,
    "ksparse.datasets": 5,      # data and files
    "ksparse.plots": 5,
    "ksparse.summary": 5,       # what `ksparse train` records about a fitted estimator
    "ksparse.cli": 6,           # the command line and the reproductions
    "ksparse.reproduce": 6,
    "ksparse.runfiles": 6,
    "ksparse.runsummary": 6,    # summary.json of a run that has not finished
}


def layer_of(module):
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in LAYERS:
            return LAYERS[name]
    raise KeyError(module)


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ksparse"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if (ROOT.parent / full.replace(".", "/")).with_suffix(".py").exists() \
                    or (ROOT.parent / full.replace(".", "/")).is_dir() else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ksparse"):
                    yield alias.name


MODULES = sorted(p for p in ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_layout_no_module_imports_from_a_layer_above(path):
    me = _module_name(path)
    if me == "ksparse":
        return  # only the lazy KSparseAutoencoder shortcut
    mine = layer_of(me)
    above = [m for m in _imports(path) if layer_of(m) > mine]
    assert not above, f"{me} (layer {mine}) imports from a layer above: {above}"


def test_layout_every_module_has_a_layer():
    for path in MODULES:
        layer_of(_module_name(path))
