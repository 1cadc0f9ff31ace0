"""Command-line parsing shared by ``ksparse``, its reproduce targets and the benchmark scripts:
an unknown option is answered with the closest valid ones.

:class:`HintParser` is an ``argparse.ArgumentParser`` whose "unrecognized arguments" error names,
for each unknown option, the options of the parser (and of the subcommand given) that it most
likely meant: the same name with ``-`` for ``_`` (``--n_hidden``), a prefix argparse would take
(``--max_it``), a name of :data:`RENAMED_OPTIONS` or :data:`SYNONYMS`, else the nearest by
:func:`difflib.get_close_matches`. ``--opt=value`` is judged by ``--opt``. How the error is shown
(an exception, or argparse's usage and exit code 2) is left to the subclass's ``error``.
"""

import argparse
import difflib
import re
import sys

#: options renamed since ksparse 0.1.0 (docs/changes.md, "Names changed since 0.1.0"): old -> new
RENAMED_OPTIONS = {"--epochs": "--max-iter", "--hidden": "--n-hidden", "--seed": "--random-state"}
#: other libraries' words for our options (scikit-learn, PyTorch scripts): word -> option
SYNONYMS = {"--learning-rate": "--lr", "--learning-rate-init": "--lr", "--n-epochs": "--max-iter",
            "--num-epochs": "--max-iter", "--n-components": "--n-hidden", "--hidden-size": "--n-hidden",
            "--n-hidden-units": "--n-hidden", "--sparsity": "--k", "--topk": "--k", "--top-k": "--k",
            "--output": "--out", "--output-dir": "--out", "--out-dir": "--out", "--data": "--dataset"}

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+(\.\d*)?e[+-]?\d+$", re.IGNORECASE)


def option_names(parser):
    """Every option string of ``parser`` (``--n-hidden``, ``--no-paper``, ``-h``, ...)."""
    return [s for action in parser._actions for s in action.option_strings]


def _chosen_subparsers(parser, namespace):
    """The subcommand parsers that ``namespace`` went through, outermost first."""
    chosen = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(getattr(namespace, action.dest, None) if action.dest != argparse.SUPPRESS
                                     else None)
            if sub is not None:
                chosen += [sub] + _chosen_subparsers(sub, namespace)
    return chosen


def _looks_like_option(token):
    return token.startswith("-") and len(token) > 1 and token != "--" and not _NUMBER.match(token)


def _is_known(token, options, abbrev=True):
    name = token.split("=", 1)[0]
    return name in options or (abbrev and name.startswith("--") and any(o.startswith(name) for o in options))


def closest(token, options):
    """``(text, names)``: what ``token`` (an unknown option, maybe ``--opt=value``) most likely meant
    among ``options``; ``text`` is "is now --new" for a renamed option, else "", and ``names`` the
    candidates, best first (empty when none is close)."""
    name = token.split("=", 1)[0]
    longs = [o for o in options if o.startswith("--")]
    norm = "--" + name.lstrip("-").replace("_", "-").lower()
    for table, say in ((RENAMED_OPTIONS, f"{name} is now "), (SYNONYMS, "")):
        bare = {old.replace("-", ""): new for old, new in table.items()}  # --learningrate too
        if bare.get(norm.replace("-", "")) in longs:
            return say, [bare[norm.replace("-", "")]]
    if norm in longs:
        return "", [norm]
    prefixed = [o for o in longs if o.startswith(norm)]
    if len(prefixed) == 1:  # an abbreviation argparse would take, once spelt with '-'
        return "", prefixed
    bare = {o[2:].replace("-", ""): o for o in longs}  # compared without dashes: --nhidden, --n-hidden
    near = difflib.get_close_matches(norm[2:].replace("-", ""), list(bare), n=3, cutoff=0.6)
    return "", [bare[n] for n in near] or prefixed[:3]


def unrecognized_message(extras, options, prog):
    """argparse's "unrecognized arguments: ..." with, for each unknown option in ``extras``, the
    valid ``options`` it most likely meant (:func:`closest`), or where the options are listed."""
    message = "unrecognized arguments: " + " ".join(extras)
    unknown = [t for t in extras if _looks_like_option(t)]
    renamed, meant = [], []
    for token in unknown:
        said, names = closest(token, options)
        if said:
            renamed.append(said + names[0])
        elif names:
            given = f" (for {token.split('=', 1)[0]})" if len(unknown) > 1 else ""
            meant.append(" or ".join(names) + given)
    hints = renamed + (["did you mean " + " and ".join(meant) + "?"] if meant else [])
    if hints:
        return message + "; " + "; ".join(hints)
    return message + (f" (`{prog} --help` lists the options)" if unknown else "")


_INVALID_CHOICE = re.compile(r"^(argument .*: invalid choice: '(.*)' \(choose from .*\))$", re.DOTALL)


def choice_hint(message):
    """argparse's "invalid choice: 'trian' (choose from 'train', ...)" with "; did you mean 'train'?"
    when one choice is close; other messages unchanged."""
    m = _INVALID_CHOICE.match(message)
    if m is None:
        return message
    choices = re.findall(r"'([^']*)'", message[message.index("(choose from"):])
    value = m.group(2).lower().replace("_", "-")
    near = [value] if value in choices else difflib.get_close_matches(value, choices, n=2, cutoff=0.6)
    return message + ("; did you mean " + " or ".join(repr(n) for n in near) + "?" if near else "")


class HintParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose unknown options are answered with the closest valid ones
    (:func:`unrecognized_message`), in a subcommand too (its parsers are of the same class); an
    unknown option that made a required argument look missing is named first.

    Examples
    --------
    >>> p = HintParser(prog="demo")
    >>> _ = p.add_argument("--n-hidden", type=int)
    >>> unrecognized_message(["--n_hidden", "5"], option_names(p), p.prog)
    'unrecognized arguments: --n_hidden 5; did you mean --n-hidden?'
    """

    def parse_known_args(self, args=None, namespace=None):
        self._seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            subs = _chosen_subparsers(self, namespace)
            options = option_names(self) + [o for sub in subs for o in option_names(sub)]
            self.error(unrecognized_message(extras, options, (subs[-1] if subs else self).prog))
        return namespace

    def error(self, message):
        """:meth:`report` the message, with the hint of an unknown option when that option is why
        an argument seems to be missing."""
        self.report(self.with_unknown(message))

    def report(self, message):
        """argparse's way: the usage, ``PROG: error: MESSAGE`` on stderr, exit code 2; subclasses
        report their own way (one line, an exception)."""
        super().error(message)

    def with_unknown(self, message):
        """``message``, preceded by the unknown options of the arguments parsed, with their hints,
        when it says that a required argument is missing (the unknown option may have taken it)."""
        options = option_names(self)
        unknown = [t for t in getattr(self, "_seen", []) if _looks_like_option(t)
                   and not _is_known(t, options, self.allow_abbrev)]
        if unknown and message.startswith("the following arguments are required"):
            return f"{unrecognized_message(unknown, options, self.prog)}; and {message}"
        return choice_hint(message)
