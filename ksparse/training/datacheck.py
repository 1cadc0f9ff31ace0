"""Resuming on the data a model was trained on: a cheap check that new data is of the same kind.

A resumed run continues the model's weights, its scale s and its k and lr schedules; on data of
another scale (raw 0-255 pixels after standardized ones, say) the same steps are far too large
or small, and training diverges or stalls with advice that a resumed run cannot follow.
"""

import math

#: resuming refuses data whose typical distance to the mean differs from the training data's by
#: more than this factor, or whose mean lies more than this many such distances from the training mean
FACTOR = 10.0


def trained_energy(state):
    """The training data's mean squared distance of a row to the mean, from the state; None if unknown.

    The scale s is its square root when the model trained on scaled inputs (s != 1); else each
    epoch's record holds it as ``loss / fvu``.
    """
    if state.scale != 1.0:
        return state.scale ** 2
    for record in reversed(state.history):
        loss, fvu = record.get("loss"), record.get("fvu")
        if isinstance(loss, float) and isinstance(fvu, float) and math.isfinite(loss) and fvu > 0 \
                and math.isfinite(fvu) and loss > 0:
            return loss / fvu
    return None


#: what :func:`check_same_data` advises, by how the training goes on: a resumed checkpoint, or more
#: epochs of a model in memory (``partial_fit``)
_WAYS_ON = {"resume": "resume only on data of the kind the model was trained on (same preprocessing), or "
                      "train a new model on this data",
            "continue": "likely data of another preprocessing (raw 0-255 pixels after [0, 1], say): "
                        "continue training only on data preprocessed as before, or call fit to train a "
                        "new model on this data"}


def check_same_data(state, stats, how="resume"):
    """Raise ValueError when data of ``stats`` (column means, mean squared distance to them) is not
    plausibly the kind ``state`` was trained on: its spread differs by more than :data:`FACTOR`,
    or (for a model that stores its training mean) its mean is more than FACTOR spreads away.

    ``how`` says how training goes on, for the advice: ``"resume"`` (a checkpoint read from a file)
    or ``"continue"`` (more epochs of a model in memory, ``partial_fit``).
    """
    import numpy as np

    energy = trained_energy(state)
    if energy is None or not energy > 0:
        return
    mean, new = stats
    was, now = math.sqrt(energy), math.sqrt(max(new, 0.0))
    ratio = now / was
    if not 1 / FACTOR <= ratio <= FACTOR:
        raise ValueError(f"the data's rows lie on average {now:.4g} from their mean, the model's training "
                         f"data's {was:.4g} ({ratio:.3g} times): {_WAYS_ON[how]}")
    if state.x_mean is not None:
        shift = float(np.sqrt(((np.asarray(mean, dtype=np.float64) - state.x_mean) ** 2).sum()))
        if shift > FACTOR * was:
            raise ValueError(f"the data's mean lies {shift:.4g} from the model's training mean, "
                             f"{shift / was:.3g} times the training data's spread: {_WAYS_ON[how]}")


#: training refuses data whose scale s or mean comes within this factor of the largest number of the
#: training dtype: the model's outputs in the data's units (x_hat = u_hat s + x_mean) would overflow
HEADROOM = 10.0


def check_representable(stats, dtype, data_dtype=None):
    """Raise ValueError when data of ``stats`` (column means, mean squared distance to them) is too
    large for the training ``dtype`` (or the data's own float ``data_dtype``, in which its rows are
    divided by s, if that is narrower): its scale s (the rows' mean distance to their mean) or
    its largest column mean exceeds ``finfo(dtype).max`` / :data:`HEADROOM`.

    Training divides the rows by s, but the model's reconstructions, scores and folded encoder
    (W / s) are in the data's units: at s near float32's 3.4e38 they overflow (inf) or underflow
    (0), and the model written is broken though every epoch's loss looked finite.
    """
    import numpy as np

    mean, energy = stats
    if data_dtype is not None and np.issubdtype(data_dtype, np.floating) \
            and np.finfo(data_dtype).max < np.finfo(dtype).max:
        dtype = data_dtype
    largest = float(np.finfo(dtype).max)
    scale = math.sqrt(energy) if math.isfinite(energy) and energy >= 0 else math.inf
    size = max(scale, float(np.max(np.abs(mean))) if np.size(mean) else 0.0)
    if size * HEADROOM <= largest:
        return
    if math.isinf(size):
        said = "its squared distances to the mean overflow float64"
        divisor = "1e+150"
    else:
        said = (f"{size:.3g}, above {largest / HEADROOM:.3g} ({np.dtype(dtype).name}'s largest number / "
                f"{HEADROOM:g})")
        divisor = f"1e+{max(1, math.ceil(math.log10(size)))}"
    raise ValueError(f"the data is too large for {np.dtype(dtype).name} training: its scale (the rows' mean "
                     f"distance to their mean, or the largest column mean) is {said}, so the model's "
                     f"reconstructions would overflow; rescale the data, e.g. divide it by {divisor}: "
                     "a k-sparse autoencoder learns the same from data scaled by any factor")


#: rows needed before :func:`warn_other_scale` judges a block's spread, and the most it reads
MIN_ROWS, MAX_ROWS = 10, 1000


def warn_other_scale(state, block):
    """Warn (UserWarning) when the rows of ``block`` (N, d; NumPy; its first :data:`MAX_ROWS`)
    spread more than :data:`FACTOR` times more or less than the model's training data: data of
    another preprocessing (raw 0-255 pixels for a model trained on [0, 1], say), whose codes mean
    nothing. Judged only on blocks of at least :data:`MIN_ROWS` rows; never raises. Returns the
    ratio, or None.
    """
    import warnings

    import numpy as np

    energy = trained_energy(state)
    if energy is None or not energy > 0 or block.shape[0] < MIN_ROWS:
        return None
    b = np.asarray(block[:MAX_ROWS], dtype=np.float64)  # a sample bounds the cost of every call
    new = float(((b - b.mean(axis=0)) ** 2).sum(axis=1).mean())
    ratio = math.sqrt(max(new, 0.0) / energy)
    if not 1 / FACTOR <= ratio <= FACTOR:
        warnings.warn(f"the rows to encode lie on average {ratio:.3g} times as far from their mean as the "
                      "model's training data did: encode data preprocessed as the training data was "
                      "(the same units and scaling); these codes mean little", UserWarning, stacklevel=3)
    return ratio
