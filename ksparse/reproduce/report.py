"""``ksparse reproduce report``: the tables of ``docs/results.md``, made from result files only.

Reads every ``*.json`` result file (:mod:`ksparse.reproduce._runs`) of ``--results``
(default ``docs/results``) and rewrites each block between ``<!-- report:NAME -->`` and
``<!-- /report:NAME -->`` of ``--docs`` (default ``docs/results.md``):

- ``table1:PROFILE``, ``table3:PROFILE``: one row per method, the test error as the mean
  ± sample standard deviation over the seeds that were run, and every seed's test and
  validation error, choices, epochs and times;
- ``epochs:table1``: Table 1's k-sparse test errors against the pre-training epochs of
  each profile;
- ``figures``: the numbers of the figure files; ``fig3``: Fig. 3's rows against issue 11's target;
- ``sweep:PROFILE``: the validation errors of ``ksparse reproduce sweep`` per row and start lr;
- ``runs``: every result file with the command that wrote it and the code version.

A ``--docs`` file that does not exist or holds no block gets one block per table the result
files support, each under a heading, after any text it held. With ``--check`` nothing is
written; the exit code is 1 when the docs differ from what the result files give, so that a
test can hold the docs to the data.

Rewriting ``--docs`` is the report's purpose, so it takes no ``--overwrite`` (unlike the other
targets, whose result files and figures it reads): only the report blocks change, every other
line is kept, and the result files are only read (a ``--docs`` that is one of them is refused).
"""

import glob
import json
import math
import os
import re
import sys

from ksparse.reproduce import _common

BEGIN, END = "<!-- report:{} -->", "<!-- /report:{} -->"
NONE = "(no results yet)\n"  # the body of a block the result files cannot fill
ORDER = {"table1": ["raw", "rbm", "dropout", "denoising", "dropout_denoising", "k40", "k25", "k10",
                    "k40c", "k25c", "k10c"],
         "table3": ["no_pretrain", "dropout", "denoising", "shallow", "deep"]}


def load_results(folder, skipped=None):
    """Every result file of ``folder`` as ``{"meta", "result", "file"}``, sorted by file name; the
    names of the other ``*.json`` files (no ``meta`` and ``result``) go to ``skipped`` when given."""
    results = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"result file {path!r} is not valid JSON ({e}); run its target again, or move "
                             "the file out of the folder") from None
        if isinstance(data, dict) and {"meta", "result"} <= set(data):
            results.append(dict(data, file=os.path.basename(path)))
        elif skipped is not None:
            skipped.append(os.path.basename(path))
    return results


def pct(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def mean_sd(values):
    """``"m% ± s%"`` (sample standard deviation, n - 1), or ``"m%"`` for a single value."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return pct(m)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return f"{pct(m)} ± {100 * sd:.2f}"


def _per_seed(res):
    return "; ".join(f"{pct(x['test_error'])} ({pct(x['val_error'])})" for x in res)


def _wall(seconds):
    return f"{seconds:.0f} s"


def _secs(t):
    return "-" if not t else f"{t['wall']:.0f} s ({t['cpu']:.0f} s)"


def _groups(results, target, profile=None):
    """``{(profile, row): [results sorted by seed]}`` of one target, in the table's row order."""
    groups = {}
    for r in results:
        m = r["meta"]
        if m["target"] == target and (profile is None or m["profile"] == profile):
            groups.setdefault((m["profile"], r["result"]["key"]), []).append(r)
    rank = {key: i for i, key in enumerate(ORDER[target])}
    return {g: sorted(groups[g], key=lambda r: r["meta"]["seed"])
            for g in sorted(groups, key=lambda g: (g[0], rank.get(g[1], 99), g[1]))}


def _header(runs):
    m = runs[0]["meta"]
    d = m["data"]
    split = d["val_split"]
    split = (f"a random {split['n_val']} of the training file (seed {split['seed']})"
             if isinstance(split, dict) else split)
    return (f"Profile `{m['profile']}` on `{d['dataset']}`: {d['n_train']} train / {d['n_val']} validation "
            f"/ {d['n_test']} test, validation images {split}. Test error: mean ± sample standard deviation "
            "over the seeds listed; times: wall clock (process CPU time).")


def _common_cells(runs):
    """Method, paper, mean ± sd, seeds, per-seed test (val.) of one group of runs."""
    res = [r["result"] for r in runs]
    seeds = ", ".join(str(r["meta"]["seed"]) for r in runs)
    return [res[0]["label"], pct(res[0]["paper_test_error"]), mean_sd([x["test_error"] for x in res]), seeds,
            "; ".join(f"{pct(x['test_error'])} ({pct(x['val_error'])})" for x in res)]


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def table1(results):
    """Markdown for Table 1's result files (one profile or several, one table each)."""
    out = []
    for profile in sorted({r["meta"]["profile"] for r in results if r["meta"]["target"] == "table1"}):
        groups = _groups(results, "table1", profile)
        head = ["Method", "Paper", "Ours: test error", "Seeds", "Test (val.) per seed", "alpha, C per seed",
                "Pre-training epochs", "Training time per seed"]
        lines = [_header(next(iter(groups.values()))), "", _row(head), "|" + "---|" * len(head)]
        for runs in groups.values():
            res = [r["result"] for r in runs]
            choice = "; ".join(("-" if x["alpha"] is None else f"{x['alpha']:g}") + f", {x['C']:g}"
                               for x in res)
            times = "; ".join(_secs(x["model"]["seconds"]) for x in res)
            lines.append(_row(_common_cells(runs) + [choice, str(res[0]["model"].get("epochs")), times]))
        at3 = [(r["meta"]["seed"], f) for r in results if r["meta"]["target"] == "table1"
               and r["meta"]["profile"] == profile and r["result"]["key"] == "k25"
               for f in r["result"]["full_fits"] if f["alpha"] == 3]
        if at3:
            lines += ["", "k = 25 at the paper's alpha = 3 (refit on all training images, C as chosen): "
                      + "; ".join(f"seed {s}: {pct(f['test_error'])}" for s, f in at3) + "."]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def table3(results):
    """Markdown for Table 3's result files, one table per profile."""
    out = []
    for profile in sorted({r["meta"]["profile"] for r in results if r["meta"]["target"] == "table3"}):
        groups = _groups(results, "table3", profile)
        head = ["Method", "Paper", "Ours: test error", "Seeds", "Test (val.) per seed",
                "Fine-tuning epochs per stage", "lr", "Pre-training epochs", "Pre-training time per seed",
                "Fine-tuning time per seed"]
        lines = [_header(next(iter(groups.values()))), "", _row(head), "|" + "---|" * len(head)]
        for runs in groups.values():
            res = [r["result"] for r in runs]
            lines.append(_row(_common_cells(runs) + [
                ", ".join(map(str, res[0]["ft_epochs"])), f"{res[0]['ft_lr']:g}",
                ", ".join(str(m["epochs"]) for m in res[0]["pretrain"]) or "-",
                "; ".join(_secs(_sum(x["pretrain"])) for x in res),
                "; ".join(_wall(x["finetune_seconds"]) for x in res)]))
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _sum(models):
    if not models:
        return None
    return {t: sum(m["seconds"][t] for m in models) for t in ("wall", "cpu")}


def epochs_table(results):
    """Table 1's k-sparse rows: test error against the pre-training epochs (one row per profile)."""
    rows = {}
    for r in results:
        res = r["result"]
        if r["meta"]["target"] == "table1" and res["key"].startswith("k") and res["model"].get("epochs"):
            rows.setdefault((res["key"], res["model"]["epochs"], r["meta"]["profile"]), []).append(r)
    if not rows:
        return "(no results yet)\n"
    lines = ["| Row | Pre-training epochs | Profile | Test error | Seeds |", "|---|---|---|---|---|"]
    rank = {key: i for i, key in enumerate(ORDER["table1"])}
    for (_, epochs, profile), runs in sorted(rows.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0][1])):
        runs = sorted(runs, key=lambda r: r["meta"]["seed"])
        lines.append(_row([runs[0]["result"]["label"], str(epochs), profile,
                           mean_sd([r["result"]["test_error"] for r in runs]),
                           ", ".join(str(r["meta"]["seed"]) for r in runs)]))
    return "\n".join(lines) + "\n"


# issue 15's targets: (target, row, profile or None for the longest one, limit, seeds needed)
TARGETS = [("table1", "k25", "quick", 0.016, 3), ("table1", "k25c", "quick", 0.016, 3),
           ("table1", "k25", None, 0.0135, 1), ("table1", "k25c", None, 0.0135, 1),
           ("table3", "shallow", None, 0.012, 3), ("table3", "deep", None, 0.011, 3)]


def targets_table(results):
    """Each target against the result files: the mean test error, the seeds, met or not."""
    lines = ["| Target | Profile (pre-training epochs) | Ours: test error | Seeds | Met? |",
             "|---|---|---|---|---|"]
    for target, key, profile, limit, n_seeds in TARGETS:
        runs = [r for r in results if r["meta"]["target"] == target and r["result"]["key"] == key
                and r["meta"]["data"]["dataset"] == "mnist"]
        if profile is None and runs:  # the longest profile that has results
            profile = max(runs, key=eval_epochs)["meta"]["profile"]
        runs = sorted((r for r in runs if r["meta"]["profile"] == profile), key=lambda r: r["meta"]["seed"])
        what = (f"{target} {key}, " + ("longest" if n_seeds == 1 or profile is None else profile) + " profile"
                + f": test error <= {pct(limit)}, "
                + ("one seed enough" if n_seeds == 1 else f"mean of {n_seeds} seeds"))
        if not runs:
            lines.append(_row([what, "-", "not run", "-", "-"]))
            continue
        errors = [r["result"]["test_error"] for r in runs]
        met = "yes" if len(runs) >= n_seeds and sum(errors) / len(errors) <= limit else (
            "no" if len(runs) >= n_seeds else f"open ({len(runs)} of {n_seeds} seeds)")
        lines.append(_row([what, f"{profile} ({_epochs(runs[0])})", mean_sd(errors),
                           ", ".join(str(r["meta"]["seed"]) for r in runs), met]))
    return "\n".join(lines) + "\n"


def eval_epochs(run):
    """The pre-training epochs of a run, summed over its autoencoders."""
    res = run["result"]
    models = [res["model"]] if "model" in res else res.get("pretrain", [])
    return sum(m.get("epochs") or 0 for m in models)


def _epochs(run):
    res = run["result"]
    models = [res["model"]] if "model" in res else res.get("pretrain", [])
    return " + ".join(str(m.get("epochs") or 0) for m in models) or "0"


def runs_table(results):
    """Every result file: the command that wrote it, the code version, when, and how long."""
    if not results:
        return "(no results yet)\n"
    lines = ["| File | Command | Code (commit, source digest) | Started (UTC) | Wall time | Load average |",
             "|---|---|---|---|---|---|"]
    for r in results:
        m = r["meta"]
        code = m["code"]
        commit = (code["commit"] or "no git")[:10] + (" + local changes" if code.get("dirty") else "")
        load = "-" if not m.get("load_average") else f"{m['load_average'][0]:.1f}"
        lines.append(f"| `{r['file']}` | `{m['command']}` | {commit}, {code['source_sha1'][:10]} "
                     f"| {m['started_utc']} | {m['seconds']:.0f} s | {load} |")
    return "\n".join(lines) + "\n"


def figures_table(results):
    """The numbers of the figure result files, one flat table per figure."""
    lines = []
    for r in results:
        if not r["meta"]["target"].startswith("fig"):
            continue
        lines += [f"`{r['file']}` (profile `{r['meta']['profile']}`, seed {r['meta']['seed']}):", "",
                  "| Model | Quantity | Value |", "|---|---|---|"]
        for model, stats in r["result"]["stats"].items():
            items = stats.items() if isinstance(stats, dict) else [("value", stats)]
            items = [(f"{q} ({n})", x) for q, v in items if isinstance(v, dict) for n, x in v.items()] + [
                (q, v) for q, v in items if not isinstance(v, dict)]  # e.g. train_seconds (wall), (cpu)
            lines += [f"| {model} | {q} | {_fmt(v)} |" for q, v in items if not isinstance(v, (dict, list))]
        lines.append("")
    return "\n".join(lines) or "(no results yet)\n"


def sweep_table(results):
    """``ksparse reproduce sweep``'s files: the lowest validation error per row and start lr."""
    lines = ["| Row | Seed | Fine-tuning images | Fine-tuning epochs per stage "
             "| Validation error per start lr | Chosen lr |", "|---|---|---|---|---|---|"]
    rank = {key: i for i, key in enumerate(ORDER["table3"])}
    for r in sorted(results, key=lambda r: (rank.get(r["result"]["key"], 99), r["meta"]["seed"])):
        res = r["result"]
        errors = "; ".join(f"{x['lr']:g}: " + ("diverged" if x["diverged"] else pct(x["val_error"]))
                           for x in res["runs"])
        lines.append(_row([res["label"], str(r["meta"]["seed"]), str(r["meta"]["data"]["n_finetune"]),
                           ", ".join(map(str, res["ft_epochs"])), errors, _fmt(res["chosen_lr"])]))
    return "\n".join(lines) + "\n"


FIG3_TARGET = 0.90  # issue 11: at least 90% of the filters on both statistics, with the defaults


def fig3_table(results):
    """Fig. 3's rows side by side: epochs, training time, the two statistics, and the 90% target."""
    lines = ["| Row (profile, seed) | Epochs | Training: wall (CPU) | Used filters | More localised than 99% "
             "of random filters | More orientation-selective than 99% | Both >= 90%? |",
             "|---|---|---|---|---|---|---|"]
    for r in (r for r in results if r["meta"]["target"] == "fig3"):
        for row, st in r["result"]["stats"].items():
            name = f"{row} ({r['meta']['profile']}, seed {r['meta']['seed']})"
            if "diverged" in st:
                lines.append(_row([name, str(st["epochs"]), "-", "-", "-", "-", f"no: {st['diverged']}"]))
                continue
            local = st["fraction_below_1st_percentile_of_random_spread"]
            oriented = st["fraction_above_99th_percentile_of_random_selectivity"]
            met = "yes" if min(local, oriented) >= FIG3_TARGET else "no"
            lines.append(_row([name, str(st["epochs"]), _secs(st["train_seconds"]),
                               f"{st['n_used_filters']}", pct(local), pct(oriented), met]))
    return "\n".join(lines) + "\n" if len(lines) > 2 else "(no results yet)\n"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def blocks(results):
    """``{name: markdown}`` of every block the result files can fill."""
    out = {"runs": runs_table(results), "epochs:table1": epochs_table(results),
           "figures": figures_table(results), "targets": targets_table(results), "fig3": fig3_table(results)}
    for target, render in (("table1", table1), ("table3", table3), ("sweep", sweep_table)):
        for profile in sorted({_profile(r["meta"]) for r in results if r["meta"]["target"] == target}):
            out[f"{target}:{profile}"] = render([r for r in results if r["meta"]["target"] == target
                                                 and _profile(r["meta"]) == profile])
    return out


def _profile(meta):
    """The run's profile tag; ``PROFILE-defaults`` for autoencoders pre-trained with the library's
    defaults (``--defaults``), also in the sweep files that recorded only the flag."""
    profile = meta["profile"]
    if meta.get("pretrain_defaults") and "-defaults" not in profile:
        head, _, tail = profile.partition("-")
        profile = "-".join(filter(None, [head, "defaults", tail]))
    return profile


def fill(text, filled):
    """``text`` with every ``report:NAME`` block replaced; a block without results says so."""
    pattern = re.compile(r"<!-- report:(\S+) -->\n.*?<!-- /report:\1 -->", re.S)

    def sub(m):
        body = filled.get(m.group(1), "(no results yet)\n")
        return f"{BEGIN.format(m.group(1))}\n{body}{END.format(m.group(1))}"

    return pattern.sub(sub, text)


#: the names --docs may have: the report is Markdown
DOCS_SUFFIXES = (".md", ".markdown")


def main(argv):
    """``ksparse reproduce report [--results DIR] [--docs PATH] [--check]``."""
    p = _common.Parser(prog="ksparse reproduce report", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=os.path.join("docs", "results"), type=_common.path_argument,
                   help="folder of result files (default: docs/results)")
    p.add_argument("--docs", default=os.path.join("docs", "results.md"), type=_common.path_argument,
                   help="Markdown file (.md) with report blocks, rewritten in place: its blocks are "
                   "replaced and every other line kept (no --overwrite needed); written with every table "
                   "the files support if it does not exist or holds no block (default: docs/results.md)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when the docs are out of date")
    args = p.parse_args(argv)
    if not os.path.isdir(args.results):
        raise ValueError(f"--results {args.results!r} is not a folder; give the folder of result files "
                         "(OUT/results of a `ksparse reproduce` run)")
    skipped = []
    results = load_results(args.results, skipped)
    if not results:
        raise ValueError(f"--results {args.results!r} holds no result files; run a `ksparse reproduce` "
                         "target first (its OUT/results)")
    from ksparse.io import atomic_write, check_parent, same_file

    if os.path.isdir(args.docs):
        raise ValueError(f"--docs {args.docs!r} is a folder; give a Markdown file, such as "
                         f"{os.path.join(args.docs, 'results.md')}")
    check_parent(args.docs, "--docs")
    if any(same_file(args.docs, path) for path in glob.glob(os.path.join(args.results, "*.json"))):
        raise ValueError(f"--docs {args.docs!r} is a result file of --results, which the report reads; give "
                         "a Markdown file, such as my-results.md")  # appending to it broke the JSON
    text = ""
    if os.path.isfile(args.docs):
        try:
            with open(args.docs, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise ValueError(f"--docs {args.docs!r} is not a text file (not UTF-8); give a Markdown file, "
                             "new or with report blocks") from None
    if not args.docs.lower().endswith(DOCS_SUFFIXES):  # e.g. results.json, a typo'd folder name
        raise ValueError(f"--docs {args.docs!r}: the report is Markdown; the accepted suffixes are "
                         f"{' and '.join(DOCS_SUFFIXES)}; name it {os.path.splitext(args.docs)[0] + '.md'!r}")
    filled = _blocks_or_error(results, args.results)
    names = re.findall(r"<!-- report:(\S+) -->", text)
    if names:
        new, what = fill(text, filled), f"filled its {len(names)} report blocks"
    else:  # a new or block-less file: every table the result files support, after any text
        fresh = fresh_blocks(filled)
        new = (text.rstrip() + "\n\n" if text.strip() else "") + fresh
        what = f"{'added' if text.strip() else 'wrote'} a block for each table these files support"
    if args.check:
        if new != text:
            print(f"{args.docs} is out of date with {args.results}; run `ksparse reproduce report`")
            return 1
        return 0
    atomic_write(args.docs, lambda f: f.write(new.encode()))
    empty = [n for n in names if filled.get(n, NONE) == NONE]
    unused = [n for n in filled if filled[n] != NONE and names and n not in names]
    if skipped:  # a row that vanished from a table should not go unexplained
        print(f"ksparse: note: {len(skipped)} .json file(s) in {args.results} are not result files (no "
              f"'meta' and 'result') and were left out: {', '.join(skipped)}", file=sys.stderr)
    print(f"wrote {args.docs}: {what} from {len(results)} result files in {args.results}"
          + (f"; no results yet for {', '.join(empty)}" if empty else "")
          + (f"; these files also support the blocks {', '.join(unused)}" if unused else ""))
    return 0


def _blocks_or_error(results, folder):
    """:func:`blocks`, or one ValueError naming the first result file that lacks a field it reads."""
    try:
        return blocks(results)
    except (KeyError, TypeError, IndexError, AttributeError):
        for r in results:  # which file: the first that cannot be reported on its own
            try:
                blocks([r])
            except (KeyError, TypeError, IndexError, AttributeError) as e:
                what = (f"lacks the field {e}" if isinstance(e, KeyError)
                        else f"has a field of the wrong form ({e})")
                path = os.path.join(folder, r["file"])
                raise ValueError(f"result file {path!r} {what}: it was not written by this version's "
                                 "`ksparse reproduce`, or was cut short; run its target again, or move the "
                                 "file out of the folder") from None
        raise


def fresh_blocks(filled):
    """Markdown holding every block of ``filled`` that has results, each under a heading."""
    parts = ["# Results (`ksparse reproduce report`)\n"]
    for name, body in filled.items():
        if body != NONE:
            parts.append(f"## {name}\n\n{BEGIN.format(name)}\n{body}{END.format(name)}\n")
    return "\n".join(parts)
