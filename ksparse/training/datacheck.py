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


def check_same_data(state, stats):
    """Raise ValueError when data of ``stats`` (column means, mean squared distance to them) is not
    plausibly the kind ``state`` was trained on: its spread differs by more than :data:`FACTOR`,
    or (for a model that stores its training mean) its mean is more than FACTOR spreads away.
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
                         f"data's {was:.4g} ({ratio:.3g} times): resume only on data of the kind the model "
                         "was trained on (same preprocessing), or train a new model on this data")
    if state.x_mean is not None:
        shift = float(np.sqrt(((np.asarray(mean, dtype=np.float64) - state.x_mean) ** 2).sum()))
        if shift > FACTOR * was:
            raise ValueError(f"the data's mean lies {shift:.4g} from the model's training mean, "
                             f"{shift / was:.3g} times the training data's spread: resume only on data "
                             "of the kind the model was trained on (same preprocessing), or train a new "
                             "model on this data")


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
