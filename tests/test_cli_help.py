"""Every command's ``--help`` lists each of its options and arguments with its help (a new user's
``ksparse reproduce --help`` listed the targets and no option)."""

import re

import pytest

from ksparse.reproduce import TARGETS
from tests.test_cli import assert_user_error, run

COMMANDS = [[], ["train"], ["encode"], ["info"], ["reproduce"]] + [["reproduce", t] for t in TARGETS]


def usage_flags(text):
    """The flags the usage lines name (``-h``, ``--out``, ...)."""
    usage = text.split("\n\n")[0]
    return set(re.findall(r"(?<![\w-])(--?[a-z][-a-z]*)", usage))


def entries(text):
    """Each entry (an option, argument or target, as indented by argparse) -> its help text."""
    found, name = {}, None
    for line in text.splitlines():
        if re.match(r"  \S", line):  # an entry: its name, then its help on the line or below it
            name, _, rest = re.split(r"(\s{2,}|$)", line.strip(), maxsplit=1)
            found[name] = rest.strip()
        elif name is not None and line.startswith("   ") and line.strip():
            found[name] = (found[name] + " " + line.strip()).strip()
        else:
            name = None
    return found


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ksparse")
def test_help_lists_every_option_with_its_help(command, capsys):
    code, out, err = run([*command, "--help"], capsys)
    assert code == 0 and not err, err
    helps = entries(out)
    named = {f for name in helps for f in re.findall(r"(?<![\w-])(--?[a-z][-a-z]*)", name)}
    missing = usage_flags(out) - named
    assert not missing, f"options in the usage without an entry: {missing}"
    assert "-h" in usage_flags(out) and len(helps) >= 2  # a usage line, and an entry beside -h
    for name, text in helps.items():
        assert len(text) > 3, f"{' '.join(command)} --help: {name!r} has no help"


def test_reproduce_help_lists_the_targets_and_their_shared_options(capsys):
    code, out, _ = run(["reproduce", "--help"], capsys)
    assert code == 0
    helps = entries(out)
    for target in TARGETS:
        assert target in helps, target
    for option in ("--profile", "--out", "--results", "--data-dir", "--cache", "--seeds", "--resume"):
        assert any(name.startswith(option + " ") or name == option for name in helps), option
    assert "TARGET --help" in " ".join(out.split())


def test_reproduce_without_a_target_is_one_error(capsys):
    code, _, err = run(["reproduce"], capsys)
    assert_user_error(code, err, "give a target", "table1", "ksparse reproduce --help")


def _scripts():
    import pkgutil

    import benchmarks

    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "common"]
    return [f"benchmarks.{name}" for name in names] + ["reference.theorem31"]


@pytest.mark.parametrize("name", _scripts())
def test_every_script_option_has_its_help(name, capsys):
    """``python -m benchmarks.X --help`` (and reference.theorem31) lists each option with its help."""
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(name).main(["--help"])
    out = capsys.readouterr().out
    helps = {n: text for n, text in entries(out).items() if n.startswith("-")}
    named = {f for n in helps for f in re.findall(r"(?<![\w-])(--?[a-z][-a-z]*)", n)}
    assert not usage_flags(out) - named - {"-m"}  # `python -m benchmarks.X` in the usage
    for option, text in helps.items():
        assert len(text) > 3, f"{name} --help: {option!r} has no help"
