"""Which export is better: "publish only if better" and "keep the N best".

A `Ranking` is an explicit argument of `Staging.publish`, built by whoever
knows what is ranked (the callback policy: its monitor, or a KerasTuner
objective). Exports already published are compared by the value their
provenance recorded (`score`): data written by earlier processes.
"""

import dataclasses
import math

from xai_callback.arguments import check_choice, check_str
from xai_callback.names import join
from xai_callback.publish import placement

PUBLISH_MODES = ("every", "best")
MODES = ("min", "max")


class NotPublished(Exception):
    """The export was not published: a better one is already in place."""


@dataclasses.dataclass(frozen=True)
class Ranking:
    """Exports ranked by one recorded value.

    Example:

    ```python
    ranking = Ranking("val_loss", "min", value=0.31, only_if_better=True)
    with staging(destination) as staged:
        ...  # write the export into staged.path
        staged.publish(ranking)  # NotPublished when 0.31 does not beat what is there
    ```

    Args:
        name: the monitor (or tuner objective) the provenance records.
        mode: "min" or "max".
        value: the new export's value (None: unknown, beats nothing).
        only_if_better: publish only when `value` beats every complete
            export already in place; otherwise the ranking only decides
            which versions `keep` keeps.
    """

    name: str
    mode: str
    value: float = None
    only_if_better: bool = False

    def __post_init__(self):
        check_str("name", self.name)
        check_choice("mode", self.mode, MODES)

    @classmethod
    def of_training(cls, training, name, mode, only_if_better=False):
        """The ranking of an export whose provenance will record `training`."""
        ranking = cls(name, mode, only_if_better=only_if_better)
        return dataclasses.replace(ranking, value=ranking.score({"training": training}))

    def score(self, record):
        """The value of this ranking's name an export's provenance records, or None."""
        training = (record or {}).get("training") or {}
        tuner = training.get("tuner") or {}
        if training.get("monitor") == self.name and training.get("mode") == self.mode:
            value = training.get("monitor_value")
        elif tuner.get("objective") == self.name and tuner.get("direction") == self.mode:
            value = tuner.get("objective_value")
        else:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value)

    def beats(self, value, than):
        """Whether `value` is strictly better than `than`."""
        return value < than if self.mode == "min" else value > than

    def best_published(self, destination):
        """(value, path) of the best complete export at `destination`, or None."""
        if destination.versioned:
            candidates = {join(destination.path, str(n)): r
                          for n, r in placement.our_versions(destination.path).items()}
        else:
            complete, record = placement.completeness(destination.path)
            candidates = {destination.path: record} if complete else {}
        scored = [(self.score(r), path) for path, r in candidates.items()]
        scored = [(v, p) for v, p in scored if v is not None]
        if not scored:
            return None
        return min(scored) if self.mode == "min" else max(scored)

    def check_beats_published(self, destination):
        """Raises NotPublished unless `value` beats every export in place."""
        best = self.best_published(destination)
        if best is None:
            return
        if self.value is None or not self.beats(self.value, best[0]):
            raise NotPublished(
                f"{self.name}={self.value} does not beat {self.name}={best[0]} of the export at "
                f"{best[1]!r}; not published."
            )


def versions_to_keep(records, keep, protect=None, ranking=None):
    """The versions `prune_versions` keeps.

    The newest `keep`, or with a `ranking` the `keep` with the best recorded
    value (versions without one rank last, newest first). `protect` (the
    version just written) is always kept.
    """
    def rank(number):
        if ranking is None:
            return (0, -number)
        value = ranking.score(records[number])
        if value is None:
            return (1, -number)
        return (0, value if ranking.mode == "min" else -value, -number)

    ordered = sorted(records, key=rank)
    kept = set(ordered[:keep])
    if protect is not None and protect in records and protect not in kept:
        kept.discard(ordered[keep - 1])
        kept.add(protect)
    return kept
