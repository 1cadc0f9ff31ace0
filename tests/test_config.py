"""The typed configs: one rule per field, one message per bad value, generated options and docs."""

import argparse
import dataclasses
import math

import numpy as np
import pytest

from ksparse.config import (
    AutoencoderConfig,
    ConfigError,
    FinetuneConfig,
    add_arguments,
    config_doc,
    given,
    init_from,
    rule_text,
)


def test_config_defaults_validate_and_round_trip():
    cfg = AutoencoderConfig()
    assert AutoencoderConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(k=7).k == 7 and cfg.k == 20
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.k = 3


@pytest.mark.parametrize("name, value, message", [
    ("alpha", math.inf, "alpha must be a finite number >= 1, got inf"),
    ("alpha", float("1e400"), "alpha must be a finite number >= 1, got inf"),
    ("lr", math.nan, "lr must be a finite number >= 0 or None, got nan"),
    ("k_start", -1, "k_start must be an integer >= 1, got -1"),
    ("momentum", 2.5, "momentum must be a finite number in [0, 1), got 2.5"),
    ("momentum", 1, "momentum must be a finite number in [0, 1), got 1.0"),
    ("k_fraction", 1.5, "k_fraction must be a finite number in [0, 1], got 1.5"),
    ("n_hidden", True, "n_hidden must be an integer >= 1, got True"),
    ("max_iter", 2.0, "max_iter must be an integer >= 1, got 2.0"),
    ("max_iter", 0, "max_iter must be an integer >= 1, got 0"),
    ("batch_size", "64", "batch_size must be an integer >= 1, got '64'"),
    ("lr", "0.1", "lr must be a finite number >= 0 or None, got '0.1'"),
    ("lr_final", -1.0, "lr_final must be a finite number >= 0 or None, got -1.0"),
    ("center", 1, "center must be True or False, got 1"),
    ("dtype", "float16", "dtype must be one of 'float32', 'float64', got 'float16'"),
    ("random_state", None, "random_state must be an integer >= 0, got None"),
    ("sigma", 0, "sigma must be a finite number > 0, got 0.0"),  # W = 0: 98% of the units dead
])
def test_each_bad_value_gives_one_message_naming_its_field(name, value, message):
    with pytest.raises(ConfigError) as info:
        AutoencoderConfig(**{name: value})
    assert str(info.value) == message
    assert info.value.field == name


def test_wrong_types_are_type_errors_and_numpy_scalars_are_accepted():
    with pytest.raises(TypeError):
        AutoencoderConfig(k=2.5)
    cfg = AutoencoderConfig(k=np.int64(5), alpha=np.float32(2.0), center=np.bool_(True))
    assert type(cfg.k) is int and type(cfg.alpha) is float and cfg.center is True
    assert AutoencoderConfig(alpha=2).alpha == 2.0 and type(AutoencoderConfig(alpha=2).alpha) is float


def test_fields_together():
    with pytest.raises(ConfigError, match="k <= n_hidden is required .*, but k = 11 > n_hidden = 10") as e:
        AutoencoderConfig(n_hidden=10, k=11)
    assert e.value.field == "k" and e.value.among == {"k": 11, "n_hidden": 10}
    # one rule between three options: the message states the rule and every option's value
    with pytest.raises(ConfigError, match=r"^alpha\*k <= n_hidden is required .*, but alpha = 3.0 and k = 5 "
                       r"give alpha\*k = 15 > n_hidden = 10; lower k or alpha, or raise n_hidden "
                       r"to at least 15$"):
        AutoencoderConfig(n_hidden=10, k=5, alpha=3)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown FinetuneConfig options \\['n_epochs'\\]"):
        FinetuneConfig.from_dict({"n_epochs": 3})


def test_every_field_states_help_and_rule():
    for cls in (AutoencoderConfig, FinetuneConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata["help"] and rule_text(f), f.name
            assert f"{f.name} : {rule_text(f)}, default {f.default!r}" in config_doc(cls)


def test_add_arguments_generates_one_option_per_field():
    parser = argparse.ArgumentParser()
    add_arguments(parser, AutoencoderConfig)
    args = parser.parse_args(["--k-start", "50", "--lr-final", "none", "--center", "--dtype", "float64"])
    assert given(args, AutoencoderConfig) == {"k_start": 50, "lr_final": None, "center": True,
                                              "dtype": "float64"}
    assert given(parser.parse_args([]), AutoencoderConfig) == {}
    assert given(parser.parse_args(["--no-center"]), AutoencoderConfig) == {"center": False}


def test_adding_a_field_is_one_change():
    """A new field reaches the estimator-style __init__, the options and the docs by itself."""
    from ksparse.config import option

    @dataclasses.dataclass(frozen=True)
    class Wider(AutoencoderConfig):
        c_aux: float = option(0.03125, "weight of an auxiliary loss", low=0)

    class Est:
        __init__ = init_from(Wider, device="cpu")

    assert Est().c_aux == 0.03125 and Est(c_aux=0.5, k=3).k == 3
    parser = argparse.ArgumentParser()
    add_arguments(parser, Wider)
    assert given(parser.parse_args(["--c-aux", "0.5"]), Wider) == {"c_aux": 0.5}
    assert "c_aux : a finite number >= 0, default 0.03125" in config_doc(Wider)
    with pytest.raises(ConfigError, match="c_aux must be a finite number >= 0, got -1.0"):
        Wider(c_aux=-1.0)
    with pytest.raises(TypeError):
        Est(bogus=1)


def test_alpha_k_check_rounds_half_up_as_alpha_k():
    from ksparse.kernels.encode import alpha_k

    assert alpha_k(5, 2.5, 13) == 13 and AutoencoderConfig(n_hidden=13, k=5, alpha=2.5).alpha == 2.5
    with pytest.raises(ValueError):
        alpha_k(5, 2.5, 12)
    with pytest.raises(ConfigError, match=r"alpha\*k <= n_hidden .*alpha\*k = 13 > n_hidden = 12"):
        AutoencoderConfig(n_hidden=12, k=5, alpha=2.5)


def test_from_saved_reads_old_names_and_legacy_values():
    from ksparse.config import option

    old = {"n_hidden": 30, "k": 5, "n_epochs": 7, "seed": 2}
    cfg = AutoencoderConfig.from_saved(old)
    assert (cfg.max_iter, cfg.random_state, cfg.n_hidden) == (7, 2, 30)

    @dataclasses.dataclass(frozen=True)
    class WithRemedy(AutoencoderConfig):
        pre_bias: bool = option(True, "a remedy, on by default", legacy=False)

    assert WithRemedy.from_saved(old).pre_bias is False  # a file from before the field: trained without
    assert WithRemedy.from_saved(dict(old, pre_bias=True)).pre_bias is True
    assert WithRemedy().pre_bias is True
