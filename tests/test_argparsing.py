"""A misspelt option, choice or subcommand is answered with the closest valid ones: from every
``ksparse`` command, every reproduce target and every benchmark script, one line (the ``ksparse``
house style: exit code 2, no traceback) that names the option meant; a renamed option names its new
spelling. The misspellings are made from each parser's own option list, not from a list of examples.
"""

import importlib
import pkgutil
import re

import pytest

import benchmarks
from ksparse.argparsing import RENAMED_OPTIONS, HintParser, closest, option_names
from ksparse.cli import build_parser, main
from ksparse.reproduce import TARGETS


def _listed(text):
    """The long options a ``--help`` text lists as entries (not those its prose names), but --help."""
    entries = [m.group(1) for m in re.finditer(r"^  (-\S.*?)(?:\s{2,}|$)", text, re.MULTILINE)]
    return sorted({o for e in entries for o in re.findall(r"--[a-z][a-z0-9-]*", e)} - {"--help", "--version"})


def _options(argv, capsys):
    """The long options that ``ksparse ARGV --help`` lists."""
    assert main([*argv, "--help"]) == 0
    return _listed(capsys.readouterr().out)


def _one_error(argv, capsys):
    """``main(argv)``: exit code 2 and one ``ksparse: error:`` line, no traceback; return the line."""
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ksparse: error: "), (code, out, err)
    assert "Traceback" not in out + err
    return lines[0]


def _typos(option):
    """Misspellings a user makes of ``option``: '_' for '-', the '-' left out, an extra letter, each
    also as ``--opt=value``. None of them is a prefix argparse would take as the option itself."""
    name = option[2:]
    typos = {"--" + name.replace("-", "_"), "--" + name.replace("-", ""), option + "x"} - {option}
    return sorted(typos | {t + "=1" for t in typos})


COMMANDS = [["train"], ["encode"], ["info"]] + [["reproduce", t] for t in TARGETS]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unknown_option_names_the_closest_of_every_command(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # --help unwrapped: no option cut at its '-'
    options = _options(command, capsys)
    assert options or command == ["info"]
    for option in options:
        for typo in _typos(option):
            line = _one_error([*command, typo], capsys)
            assert "unrecognized arguments: " + typo in line, line
            assert f"did you mean {option}" in line or re.search(f"did you mean [^?]*{option}[ ?]", line), \
                (typo, line)


@pytest.mark.parametrize("old, new", sorted(RENAMED_OPTIONS.items()))
def test_renamed_option_names_its_new_spelling(old, new, capsys):
    for typed in (old, old + "=3"):
        line = _one_error(["train", typed, "3"] if "=" not in typed else ["train", typed], capsys)
        assert f"{old} is now {new}" in line, line


def test_renamed_options_are_those_of_the_changelog():
    """docs/changes.md's table of names changed since 0.1.0: each option it renames is answered."""
    text = open("docs/changes.md").read()
    table = text[text.index("### Names changed since 0.1.0"):].split("\n\n")[1]
    found = {}
    for row in table.splitlines()[2:]:
        before, now = row.split("|")[1:3]
        old, new = re.findall(r"`(--[a-z-]+)`", before), re.findall(r"`(--[a-z-]+)`", now)
        found.update(dict.fromkeys(old, new[0]) if old and new else {})
    assert found and found == RENAMED_OPTIONS


@pytest.mark.parametrize("typed, meant", [
    ("--n_hidden", "--n-hidden"), ("--nhidden", "--n-hidden"), ("--max_iter", "--max-iter"),
    ("--learning-rate", "--lr"), ("--learning_rate=0.1", "--lr"), ("--lr_final", "--lr-final"),
    ("--no_paper", "--no-paper"), ("--n_hid=5", "--n-hidden"), ("-lr", "--lr"),
    ("--batchsize", "--batch-size"),
])
def test_the_issue_examples(typed, meant, capsys):
    line = _one_error(["train", typed, "5"], capsys)
    assert f"did you mean {meant}?" in line, line


def test_an_abbreviation_argparse_takes_is_still_taken():
    args = build_parser().parse_args(["train", "--n-hid", "12", "--max", "3"])
    assert (args.n_hidden, args.max_iter) == (12, 3)


def test_several_unknown_options_each_get_their_hint(capsys):
    line = _one_error(["train", "--lr_final", "1", "--max_iter", "3", "--epochs", "3"], capsys)
    assert "--epochs is now --max-iter" in line
    assert "--lr-final (for --lr_final)" in line and "--max-iter (for --max_iter)" in line


def test_no_close_option_points_at_help(capsys):
    line = _one_error(["train", "--frobnicate"], capsys)
    assert "did you mean" not in line and "`ksparse train --help` lists the options" in line


def test_an_unknown_option_that_took_a_positional_is_named(capsys):
    """``encode MODEL INPUT --fomr`` (OUTPUT missing because of the typo): the typo first."""
    line = _one_error(["encode", "m.npz", "x.npy", "--fomr"], capsys)
    assert "did you mean --form?" in line and "required: OUTPUT" in line


@pytest.mark.parametrize("argv, meant", [
    (["trian"], "'train'"), (["encode", "m", "x", "h", "--form", "dens"], "'dense'"),
    (["train", "--device", "GPU"], "'gpu'"), (["train", "--b-prime-init", "medain"], "'median'"),
    (["reproduce", "tabel1"], "'table1'"),
    (["reproduce", "table1", "--out", "o", "--profile", "papr"], "'paper'"),
])
def test_a_misspelt_choice_or_subcommand_names_the_closest(argv, meant, capsys):
    assert f"did you mean {meant}" in _one_error(argv, capsys)


def test_closest_compares_without_dashes_and_case():
    options = ["--n-hidden", "--no-paper", "--paper", "--lr", "--lr-final"]
    assert closest("--N_Hidden=3", options) == ("", ["--n-hidden"])
    assert closest("--frobnicate", options) == ("", [])
    assert closest("--learningrate", options) == ("", ["--lr"])


BENCHMARKS = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "common")


@pytest.mark.parametrize("name", BENCHMARKS + ["reference.theorem31"])
def test_benchmark_scripts_name_the_closest_option(name, capsys, monkeypatch):
    """Every ``python -m benchmarks.X`` (argparse's usage and error, exit code 2): the longest option
    of its ``--help`` with a letter too many is answered with that option, before any work."""
    module = importlib.import_module(name if "." in name else f"benchmarks.{name}")
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        module.main(["--help"])
    options = sorted(_listed(capsys.readouterr().out), key=len) or ["--help"]  # a part of another script
    with pytest.raises(SystemExit) as e:
        module.main([options[-1] + "x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert f"did you mean {options[-1]}" in err, err


def test_hint_parser_is_argparse_for_good_input():
    p = HintParser(prog="demo")
    p.add_argument("--n-hidden", type=int, default=1)
    assert p.parse_args(["--n-hidden", "4"]).n_hidden == 4
    assert option_names(p) == ["-h", "--help", "--n-hidden"]
