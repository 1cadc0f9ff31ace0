"""The fastest of the equal-result ways to run a step, here and now (CPU).

A step on n threads can run its ranges as OpenMP regions (:mod:`ksparse.kernels._gomp`),
on a Python thread pool, or one after the other in the calling thread ("serial"). The
three give the same numbers bit for bit (the same kernels on the same ranges, the
per-range partial sums added in the same order), but not at the same speed: on a quiet
machine the threads win, while where other processes want the cores a phase can wait a
whole time slice for the thread it needs, and a small step then runs several times faster
in one thread. So each step shape keeps the seconds per row of its last :data:`RECENT`
steps on each path and takes the path with the lowest median; every :data:`PROBE`-th
step runs on another path, in turn, so that every path stays measured. The first path
offered is taken until another has been measured. Training stays deterministic: which path
ran a step never changes its result.
"""

import collections
import statistics
import threading

RECENT, PROBE = 5, 50
_LIMIT = 64  # step shapes remembered (the least recently used is forgotten)


class Choice:
    """The recent seconds per row of each path of one step shape, and the choice they make."""

    def __init__(self):
        self.steps = 0
        self.seconds = collections.defaultdict(lambda: collections.deque(maxlen=RECENT))

    def pick(self, paths):
        """The path (one of ``paths``, the preferred first) for the next step."""
        self.steps += 1
        medians = {p: statistics.median(self.seconds[p]) for p in paths if self.seconds[p]}
        best = min(medians, key=medians.get) if medians else paths[0]
        others = [p for p in paths if p != best]
        if others and self.steps % PROBE == 0:
            return others[(self.steps // PROBE) % len(others)]
        return best

    def record(self, path, seconds, rows):
        """Add one step's time on ``path`` (seconds for a batch of ``rows`` rows)."""
        self.seconds[path].append(seconds / rows)


_CHOICES = collections.OrderedDict()
_LOCK = threading.Lock()


def choice_for(key):
    """The :class:`Choice` of a step shape (any hashable key), made on first use."""
    with _LOCK:
        choice = _CHOICES.pop(key, None) or Choice()
        _CHOICES[key] = choice
        while len(_CHOICES) > _LIMIT:
            _CHOICES.popitem(last=False)
        return choice
