"""``ksparse reproduce TARGET``: the paper's tables and figures, one command each.

Each target is a module with ``main(argv) -> int`` that parses its own options
(``--profile quick|paper``, ``--out DIR``, ``--data-dir DIR``).
"""

import difflib
import importlib

TARGETS = {
    "table1": ("ksparse.reproduce.table1", "Table 1: unsupervised features + logistic regression, MNIST"),
    "fig1": ("ksparse.reproduce.figures", "Fig. 1: MNIST filters for k = 70, 40, 25, 10"),
    "fig3": ("ksparse.reproduce.figures", "Fig. 3: CIFAR-10 patch filters, k = 50"),
    "fig4": ("ksparse.reproduce.figures", "Fig. 4: histograms of log hidden activity"),
    "table3": ("ksparse.reproduce.table3", "Table 3: supervised fine-tuning, MNIST"),
    "sweep": ("ksparse.reproduce.sweep", "the fine-tuning lr of Table 3's rows, on validation error"),
    "report": ("ksparse.reproduce.report", "the tables of docs/results.md, from the result files"),
}


def help_text():
    """``ksparse reproduce --help``: the targets, and the options they share with one line of help each."""
    import argparse
    import textwrap

    from ksparse.reproduce import _common

    lines = [f"  {name:8s} {text}" for name, (_, text) in TARGETS.items()]
    shared = textwrap.fill("Every target but report takes the options below; `ksparse reproduce TARGET "
                           "--help` lists a target's own options too (report's: --results, --docs, --check).")
    description = "The paper's tables and figures, one target each:\n\n" + "\n".join(lines) + "\n\n" + shared
    p = _common.parser("TARGET", description, formatter_class=argparse.RawDescriptionHelpFormatter)
    return p.format_help()


def main(argv):
    """Run ``argv[0]`` (a target name) with the remaining arguments; return an exit code."""
    if argv and argv[0] in ("-h", "--help"):
        print(help_text(), end="")
        return 0
    if not argv:
        raise ValueError(f"give a target: ksparse reproduce TARGET, one of {list(TARGETS)} "
                         "(`ksparse reproduce --help` lists them and their options)")
    name, rest = argv[0], list(argv[1:])
    if name not in TARGETS:
        near = difflib.get_close_matches(name.lower(), TARGETS, n=1)
        meant = f"did you mean {near[0]!r}? " if near else ""
        raise ValueError(f"unknown reproduce target {name!r}; {meant}choose one of {sorted(TARGETS)}")
    from ksparse.reproduce import _common, _progress

    module = importlib.import_module(TARGETS[name][0])
    _common.MADE_FOLDERS.clear()
    _common.DATA_RECORD.clear()
    try:
        with _progress.shown():  # a bar per model's epochs, a line per row or figure, on stderr
            return module.main([name] + rest) if module.__name__.endswith("figures") else module.main(rest)
    except BaseException:  # bad input or missing data: leave no empty folder behind
        _common.remove_made_folders()
        raise
