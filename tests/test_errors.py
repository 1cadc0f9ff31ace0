"""ksparse.errors: the project's own exception types; complex input refused wherever data enters."""

import warnings

import numpy as np
import pytest

from ksparse.datasets.cifar10 import fit_zca, lcn, zca_whiten
from ksparse.datasets.norb import norb_features
from ksparse.errors import (
    ComplexDataError,
    DataFileError,
    KSparseError,
    ModelFileError,
    NotEnoughMemoryError,
    reject_complex,
)
from ksparse.training import loop as train
from reference.coherence import check_dictionary, theorem31_ratio
from reference.iti import check_signals, one_step
from reference.omp import batch_omp

Z = np.ones((4, 3)) + 1j
W = np.eye(3)


def test_errors_are_the_builtin_types_callers_catch():
    for cls in (DataFileError, ModelFileError, NotEnoughMemoryError):
        assert issubclass(cls, KSparseError) and issubclass(cls, ValueError)
    assert issubclass(ComplexDataError, TypeError) and issubclass(ComplexDataError, ValueError)
    assert issubclass(ComplexDataError, KSparseError)


@pytest.mark.parametrize("x", [Z, Z.astype(np.complex64), [[1 + 2j, 3.0]], (1j,), 2j])
def test_reject_complex_refuses_arrays_lists_and_scalars(x):
    with pytest.raises(ComplexDataError, match="Complex data not supported: X holds complex numbers"):
        reject_complex(x, "X")


@pytest.mark.parametrize("x", [np.ones(3), [[1, 2.5]], 3.0, np.array([True])])
def test_reject_complex_passes_real_input_unchanged(x):
    assert reject_complex(x) is x


ENTRY_POINTS = {
    "train.check_data": lambda: train.check_data(Z),
    "train.fit": lambda: train.fit(Z, {"n_hidden": 4, "k": 2, "max_iter": 1}),
    "reference.check_signals": lambda: check_signals(Z, 3),
    "reference.check_dictionary": lambda: check_dictionary(W + 0j),
    "reference.one_step b": lambda: one_step(np.ones((2, 3)), W, 1, b=np.ones(3) + 1j),
    "reference.theorem31_ratio": lambda: theorem31_ratio(0.1, Z),
    "reference.batch_omp G": lambda: batch_omp(np.ones((2, 3)), W, 1, G=W + 0j),
    "cifar10.lcn": lambda: lcn(Z),
    "cifar10.fit_zca": lambda: fit_zca(Z),
    "cifar10.zca_whiten": lambda: zca_whiten(Z, np.zeros(3), W),
    "norb.norb_features": lambda: norb_features(np.ones((1, 2, 64, 64)) * 1j),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_complex_input_raises_and_never_warns_it_away(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning would mean the imaginary part was dropped
        with pytest.raises(ComplexDataError, match="holds complex numbers"):
            ENTRY_POINTS[name]()
