"""Typed configurations: every option of a model stated once, with its type, range and meaning.

A configuration is a frozen dataclass whose fields are declared with :func:`option`. The
field's annotation gives its type (``int``, ``float``, ``bool``, ``str``; ``| None`` allows
None), :func:`option` gives the default, the range or choices and a one-line help text.
Constructing an instance validates every field (:meth:`Config.__post_init__`): a wrong
value raises :class:`ConfigError` naming that one field and the value, e.g.
``alpha must be a finite number >= 1, got inf``. Everything else is generated from the
fields: the estimators' parameters and their docs, the ``ksparse train`` options, the
checkpoint's metadata and the reproduction profiles. Adding an option is one new field.

- :class:`AutoencoderConfig`: the k-sparse autoencoder and its training (Sec. 2.2, 4.2).
- :class:`FinetuneConfig`: supervised fine-tuning of a k-sparse network (Sec. 4.2.2, 4.6).
"""

import argparse
import dataclasses
import inspect
import math
import numbers
import types
import typing

from ksparse.errors import KSparseError


class ConfigError(KSparseError, ValueError):
    """One option has a value out of its range; ``field``, ``rule`` and ``value`` say which.

    ``str(error)`` is ``"<field> <rule>, got <value>"``, then ``"; <fix>"`` when a ``fix`` is
    given: a template naming parameters as ``{k}`` (``"lower {k} or raise {n_hidden}"``). The
    command line rewrites the field and the fix's names as options (``--k-start must be ...``).

    A rule between options (``alpha*k <= n_hidden``) gives ``among``, ``{name: value}`` of every
    option it involves: ``rule`` is then the whole sentence, a template that names each of them
    as ``{k}``, shown with its value (``k = 20``; on the command line ``--k 20``), so that the
    message blames no one option of several.
    """

    def __init__(self, field, rule, value, fix=None, among=None):
        self.field, self.rule, self.value, self.fix, self.among = field, rule, value, fix, among
        super().__init__(self.text(lambda name: name))

    def text(self, say, show=None):
        """The message with each parameter named by ``say(name)``; in a rule between options each
        one it involves is shown by ``show(name, value)`` (default ``"<say(name)> = <value>"``)."""
        if self.among is None:
            return f"{say(self.field)} {self.rule}, got {self.value!r}" + self.fix_text(say)
        show = show or (lambda name, value: f"{say(name)} = {value!r}")
        shown = {name: show(name, value) for name, value in self.among.items()}
        return self.rule.format_map(shown) + self.fix_text(say)

    def fix_text(self, say):
        """``"; <fix>"`` with each parameter name written by ``say(name)``, or "" without a fix."""
        return "" if self.fix is None else "; " + self.fix.format_map(_Names(say))


class _Names(dict):
    def __init__(self, say):
        super().__init__()
        self.say = say

    def __missing__(self, name):
        return self.say(name)


class ConfigTypeError(ConfigError, TypeError):
    """One option has a value of the wrong type (a float for an integer, a string for a number)."""


_NO_LEGACY = object()


def option(default, help, *, low=None, high=None, low_open=False, high_open=False, choices=None,
           legacy=_NO_LEGACY):
    """A configuration field: its default, its range (``low``/``high``, inclusive unless
    ``*_open``) or ``choices``, and a one-line ``help`` (the docs and ``--help`` show it).

    ``legacy`` is the value that a file written before the field existed stands for (see
    :meth:`Config.from_saved`); give it when the default changes what such a file means, e.g.
    a new remedy on by default that old models were trained without.
    """
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": choices, "legacy": legacy}
    return dataclasses.field(default=default, metadata=meta)


def field_type(field):
    """(base type, None allowed) of a field's annotation, e.g. ``float | None`` -> (float, True)."""
    args = typing.get_args(field.type) if isinstance(field.type, types.UnionType) else (field.type,)
    base = [a for a in args if a is not type(None)]
    return base[0], len(base) < len(args)


def _range_text(meta):
    if meta["low"] is not None and meta["high"] is not None:
        return (f"in {'(' if meta['low_open'] else '['}{meta['low']}, {meta['high']}"
                f"{')' if meta['high_open'] else ']'}")
    parts = []
    if meta["low"] is not None:
        parts.append(f"{'>' if meta['low_open'] else '>='} {meta['low']}")
    if meta["high"] is not None:
        parts.append(f"{'<' if meta['high_open'] else '<='} {meta['high']}")
    return " and ".join(parts)


def rule_text(field):
    """What a field accepts, in words: ``an integer >= 1``, ``a finite number in [0, 1)``."""
    base, optional = field_type(field)
    meta = field.metadata
    if meta["choices"] is not None:
        text = "one of " + ", ".join(repr(c) for c in meta["choices"])
    elif base is bool:
        text = "True or False"
    else:
        text = ("an integer" if base is int else "a finite number") + \
            (f" {_range_text(meta)}" if _range_text(meta) else "")
    return text + (" or None" if optional else "")


def check_value(field, value):
    """Return ``value`` as the field's type, or raise :class:`ConfigError` naming the field."""
    base, optional = field_type(field)
    meta, rule = field.metadata, "must be " + rule_text(field)
    if value is None:
        if optional:
            return None
        raise ConfigTypeError(field.name, rule, value)
    if base is bool:
        if type(value).__name__ not in ("bool", "bool_"):
            raise ConfigTypeError(field.name, rule, value)
        return bool(value)
    if base is str:
        if value not in meta["choices"]:
            raise ConfigError(field.name, rule, value)
        return str(value)
    kind = numbers.Integral if base is int else numbers.Real
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, kind):
        raise ConfigTypeError(field.name, rule, value)
    value = base(value)
    if not math.isfinite(value):
        raise ConfigError(field.name, rule, value)
    low, high = meta["low"], meta["high"]
    if low is not None and (value < low or (meta["low_open"] and value == low)):
        raise ConfigError(field.name, rule, value)
    if high is not None and (value > high or (meta["high_open"] and value == high)):
        raise ConfigError(field.name, rule, value)
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of the typed configurations: validation on construction, dict round trip."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(f, getattr(self, f.name)))
        self.check_together()

    RENAMED = {}  # old name -> field, for files written with an older name

    def check_together(self):
        """Checks that involve several fields; raise :class:`ConfigError` naming one of them."""

    @classmethod
    def from_saved(cls, values):
        """An instance from a saved dict (a checkpoint's), possibly written by an older ksparse:
        old names are renamed (:attr:`RENAMED`), and a missing field takes its ``legacy`` value
        if it has one, else its default."""
        values = {cls.RENAMED.get(name, name): value for name, value in dict(values).items()}
        for f in dataclasses.fields(cls):
            if f.name not in values and f.metadata["legacy"] is not _NO_LEGACY:
                values[f.name] = f.metadata["legacy"]
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values):
        """An instance from a mapping of field names; an unknown name is an error."""
        names = cls.names()
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} options {unknown}; known: {list(names)}")
        return cls(**values)

    @classmethod
    def names(cls):
        """The field names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self):
        """The fields as a JSON-able dict (what checkpoints store)."""
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A validated copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def config_doc(cls, indent="    "):
    """The numpydoc ``Parameters`` entries of a config's fields: name, type, default, help."""
    lines = []
    for f in dataclasses.fields(cls):
        lines.append(f"{f.name} : {rule_text(f)}, default {f.default!r}")
        lines.append(f"{indent}{f.metadata['help']}")
    return "\n".join(indent + line for line in lines)


def init_from(cls, **extra):
    """An ``__init__`` for a scikit-learn estimator whose parameters are ``cls``'s fields plus
    ``extra`` (name -> default), each stored unchanged (scikit-learn's convention).

    The signature is a real one (``inspect.signature`` and ``get_params`` see every name).
    """
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [P(f.name, P.KEYWORD_ONLY, default=f.default) for f in dataclasses.fields(cls)]
    params += [P(name, P.KEYWORD_ONLY, default=default) for name, default in extra.items()]
    signature = inspect.Signature(params)

    def __init__(self, **kwargs):
        bound = signature.bind(self, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


def flag(name):
    """The command-line option of a field: ``k_start`` -> ``--k-start``."""
    return "--" + name.replace("_", "-")


def _parse(field):
    """argparse's ``type`` for a number field: int or float, or None from "none" where allowed."""
    base, optional = field_type(field)

    def parse(text):  # the range is checked by the config, which names the option
        return None if optional and text.lower() == "none" else base(text)

    parse.__name__ = base.__name__  # argparse's "invalid int value" names it
    return parse


def add_arguments(parser, cls):
    """Add one option per field of ``cls`` to an argparse parser: :func:`flag` of the name, the
    help, the rule and the default. Options not given stay unset (see :func:`given`)."""
    for f in dataclasses.fields(cls):
        text = f"{f.metadata['help']} ({rule_text(f)}; default: {f.default})".replace("%", "%%")
        kw = {"default": argparse.SUPPRESS, "help": text}
        if field_type(f)[0] is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kw)
        elif f.metadata["choices"]:
            parser.add_argument(flag(f.name), choices=f.metadata["choices"], **kw)
        else:
            parser.add_argument(flag(f.name), type=_parse(f), metavar=f.name.upper(), **kw)


def given(args, cls):
    """The fields of ``cls`` set on the command line (an argparse namespace), as a dict."""
    return {name: getattr(args, name) for name in cls.names() if hasattr(args, name)}


#: the fields that ``paper=True`` turns off (docs/training.md): with it they are ignored, so the
#: command line refuses them and ``ksparse info`` leaves them out of a model's settings
PAPER_OFF = ("scale", "pre_bias", "resample", "step_bound", "b_prime_init", "c_aux")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(Config):
    """The k-sparse autoencoder and its training: Sec. 2.2 (model), 4.2.1 (schedule), 4.2.2 (SGD).

    Examples
    --------
    >>> AutoencoderConfig(k=10).replace(max_iter=5).max_iter
    5
    """

    RENAMED = {"n_epochs": "max_iter", "seed": "random_state"}  # the names of ksparse 0.1.0

    n_hidden: int = option(1000, "number of hidden units H", low=1)
    k: int = option(20, "sparsity level: units kept per sample in training, Sec. 2.2; k <= n_hidden",
                    low=1)
    alpha: float = option(3.0, "features keep alpha k units (rounded half up), Sec. 2.2 (sparse "
                          "encoding); alpha k <= n_hidden", low=1)
    coefficients: str = option("encoder", "the values of the alpha k kept units (transform, score, "
                               "encode; never training): 'encoder' keeps W^T x + b (Sec. 2.2), "
                               "'least_squares' refits them on that support to reconstruct x best "
                               "(Eq. 3, the inversion step of ITI, Sec. 3)",
                               choices=("encoder", "least_squares"))
    k_start: int = option(100, "k of the first epoch, falling linearly to k over k_fraction of the "
                          "epochs, Sec. 4.2.1; the schedule starts at min(k_start, n_hidden), and at k "
                          "if that is below k (`ksparse info` shows the start used)", low=1)
    k_fraction: float = option(0.5, "fraction of max_iter over which k falls from k_start to k",
                               low=0, high=1)
    max_iter: int = option(100, "number of epochs (passes over the training data); the length of "
                           "the k and lr schedules; at least 1 (a fit trains)", low=1)
    batch_size: int = option(64, "minibatch size", low=1)
    lr: float | None = option(None, "learning rate of SGD with momentum, Eq. (11); None: 0.25 (times "
                              "min(1, d / k) and min(1, batch_size / 32) up to batch 64, min(2, "
                              "batch_size / 64) above) on the scaled inputs, 0.01 "
                              "(the paper's) with paper=True",
                              low=0)
    lr_final: float | None = option(None, "learning rate of the last epoch, reached linearly from lr; "
                                    "None keeps lr constant", low=0)
    bias_lr_ratio: float | None = option(
        None, "the biases' (b, b') learning rate as a fraction of lr (D13); None: the data's lambda_1, its "
        "largest share of variance along one direction (0.097 on MNIST, 0.015 on whitened CIFAR-10 "
        "patches); 1 is the paper's single rate (paper=True uses 1)", low=0, high=1, low_open=True,
        legacy=1.0)
    momentum: float = option(0.9, "momentum of Eq. (11)", low=0, high=1, high_open=True)
    sigma: float = option(0.01, "standard deviation of the Gaussian initial weights, Sec. 4.2.2 (> 0: "
                          "with W = 0 every unit starts alike and the ties of top-k pick the same ones)",
                          low=0, low_open=True)
    center: bool = option(False, "subtract the training mean from every input (stored with the model; "
                          "not in the paper; keeps more units alive on non-negative data)")
    paper: bool = option(False, "the paper's model on the raw inputs: turns off scale, pre_bias, "
                         "c_aux, resample and step_bound, and steps the biases at lr (bias_lr_ratio 1; "
                         "docs/training.md)", legacy=True)
    scale: bool = option(True, "train on x / s, s stored with the model (the mean squared distance of "
                         "the samples to their mean becomes 1), so that lr means the same for any units")
    pre_bias: bool = option(True, "D9: encode x - b' (the decoder's bias, learned, started from the "
                            "data)")
    b_prime_init: str = option("mean", "D9's initial b': the training mean or geometric median",
                               choices=("mean", "median", "zero"))
    k_aux: int | None = option(None, "D10 (AuxK): dead units per sample that reconstruct the residual; "
                               "None: min(n_hidden, d) // 2", low=1)
    c_aux: float = option(0.0, "D10's weight (Gao et al.: 1/32); 0 turns AuxK off (with resampling it "
                          "measured no better, and slower)", low=0)
    dead_window: int | None = option(None, "T: a unit is dead when in no support of the last T training "
                                     "samples; None: 100 n_hidden / k", low=1)
    resample: bool = option(True, "point units dead for T samples at the inputs of the minibatch "
                            "reconstructed worst, velocities reset (deterministic)")
    step_bound: bool = option(True, "D11: cap each minibatch's lr at (1 - momentum) N / (2 max_i "
                              "||x_i - b'||^2), so that rows far outside the others' scale (e.g. "
                              "standardized pixels of tiny variance) cannot make training diverge",
                              legacy=False)
    dtype: str = option("float32", "floating-point type of the weights and of the data in training",
                        choices=("float32", "float64"))
    random_state: int = option(0, "seed of the initial weights and of the minibatch order", low=0)

    def check_together(self):
        if self.k > self.n_hidden:  # a rule between options: the message names both (ConfigError)
            raise ConfigError("k", "k <= n_hidden is required (each sample keeps k of the n_hidden "
                              "units), but {k} > {n_hidden}", self.k,
                              fix=f"lower {{k}} or raise {{n_hidden}} to at least {self.k}",
                              among={"k": self.k, "n_hidden": self.n_hidden})
        # alpha k rounded half up: the one rule, that of ksparse.kernels.encode.alpha_k
        ak = math.floor(self.alpha * self.k + 0.5)
        if ak > self.n_hidden:
            raise ConfigError("alpha", "alpha*k <= n_hidden is required (the features keep alpha*k of "
                              f"the n_hidden units), but {{alpha}} and {{k}} give alpha*k = {ak} > "
                              "{n_hidden}", self.alpha,
                              fix=f"lower {{k}} or {{alpha}}, or raise {{n_hidden}} to at least {ak}",
                              among={"alpha": self.alpha, "k": self.k, "n_hidden": self.n_hidden})
        if self.paper and self.c_aux:  # the paper's setting has no AuxK: it would be ignored
            raise ConfigError("c_aux", "must be 0 with paper=True (the paper's setting turns AuxK off; "
                              "use paper=False for it)", self.c_aux)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Config):
    """Supervised fine-tuning of a k-sparse network, Sec. 4.2.2 and 4.6 (one value for every stage)."""

    max_iter: int = option(200, "epochs per fine-tuning stage", low=0)
    lr: float = option(1.0, "initial learning rate of Eq. (11), falling linearly to lr_final", low=0)
    lr_final: float | None = option(0.001, "learning rate of the last epoch of each stage; None keeps "
                                    "lr constant", low=0)
    momentum: float = option(0.25, "momentum of Eq. (11)", low=0, high=1, high_open=True)
    batch_size: int = option(128, "minibatch size", low=1)
    random_state: int = option(0, "seed of the minibatch order", low=0)
    p_input: float = option(0.0, "drop rate of the input pixels in training (S6, the denoising row)",
                            low=0, high=1, high_open=True)
    p_hidden: float = option(0.0, "drop rate of the hidden units in training (S6, the dropout row)",
                             low=0, high=1, high_open=True)
