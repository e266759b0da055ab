"""
What adaptive concurrency learned about an unconfigured quota, as a record the next job starts from.

A hook that met the quota (a 429 ended its slow start), or that started from a record, knows the request
and input-token rates the quota allows it (see
:meth:`~airflow_provider_gemini_milvus.gemini.concurrency.AdaptiveConcurrency.learned_rates`). That rate is
its *share*: when 4 shards in 4 processes share one quota, each learns about a quarter of it. A
:class:`LearnedQuota` keeps the share of every learner of the last job (those whose spans overlap), so

* a new hook starts from the median share of the last job's learners (:meth:`LearnedQuota.start_rates`):
  a scheduled job that runs as 4 shards again starts 4 hooks at a quarter each, their sum the quota, and a
  shard that finished last and took up the room the others left does not count as the whole;
* the record says how many learners there were and what they got through together
  (:attr:`LearnedQuota.total_requests_per_second`), for a person reading it;
* a job of a different shape only starts off: more processes than before start above the quota and are cut
  back by the 429s that follow (as slow start is today); fewer start below it and probe upward.

The record ages (:func:`trust`): fully trusted for :data:`FRESH_SECONDS` (a daily job reads yesterday's),
then discounted by half every :data:`HALF_LIFE_SECONDS`, and ignored after :data:`MAX_AGE_SECONDS`, so a
quota that was lowered, or a record nobody renewed, is not trusted forever. Every job that meets the quota
writes what it got, so a lowered quota is re-learned by the next run anyway.

A record holds numbers and random learner ids only: no key, no text, no model output. Pure code: where the
record is kept is :mod:`~airflow_provider_gemini_milvus.hooks.quota_memory`'s concern.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FRESH_SECONDS",
    "HALF_LIFE_SECONDS",
    "MAX_AGE_SECONDS",
    "MAX_LEARNERS",
    "LearnedQuota",
    "LearnerShare",
    "trust",
]

#: A record this young is trusted whole: a daily job, even one that slipped by hours, reads yesterday's.
FRESH_SECONDS = 36 * 3600.0

#: After :data:`FRESH_SECONDS`, the rate a record gives is halved every this many seconds.
HALF_LIFE_SECONDS = 3 * 24 * 3600.0

#: A record older than this is ignored: the job starts in slow start, as without one.
MAX_AGE_SECONDS = 14 * 24 * 3600.0

#: A record written this far in the future (another worker's clock) is not believed.
_CLOCK_SKEW_SECONDS = 3600.0

#: Learners kept per record (mapped tasks may run many shards); the most recent are kept.
MAX_LEARNERS = 64

_VERSION = 1


def trust(age_seconds: float) -> float:
    """
    The share of a record's rate a new job starts at, by the record's age: 1 while fresh, then halved every
    :data:`HALF_LIFE_SECONDS`; 0 past :data:`MAX_AGE_SECONDS` or written in the future.
    """
    if age_seconds < -_CLOCK_SKEW_SECONDS or age_seconds > MAX_AGE_SECONDS:
        return 0.0
    return float(0.5 ** (max(age_seconds - FRESH_SECONDS, 0.0) / HALF_LIFE_SECONDS))


@dataclass(frozen=True)
class LearnerShare:
    """
    What one hook got through once it knew the quota.

    :param learner: a random id of the hook's window (to replace its own earlier entry), never a name.
    :param requests_per_second: requests per second the quota allows it.
    :param tokens_per_second: input tokens per second the quota allows it.
    :param since: when the measure began (seconds since the epoch).
    :param until: when it was taken (seconds since the epoch).
    """

    learner: str
    requests_per_second: float
    tokens_per_second: float
    since: float
    until: float

    def __post_init__(self) -> None:
        numbers = (self.requests_per_second, self.tokens_per_second, self.since, self.until)
        if not all(math.isfinite(number) for number in numbers):
            raise ValueError("a learner's rates and times must be finite numbers")
        if self.requests_per_second <= 0 or self.tokens_per_second < 0 or self.until < self.since:
            raise ValueError("a learner needs a positive request rate and since <= until")
        if not self.learner or len(self.learner) > 32 or not self.learner.isalnum():
            raise ValueError("a learner id is 1 to 32 letters or digits")


@dataclass(frozen=True)
class LearnedQuota:
    """
    The shares the learners of the last job got through: one record per connection and model.

    :param learners: one :class:`LearnerShare` per hook of the last job, at least one.
    """

    learners: tuple[LearnerShare, ...]

    def __post_init__(self) -> None:
        if not self.learners:
            raise ValueError("a learned quota needs at least one learner")

    @property
    def learned_at(self) -> float:
        """When the last learner wrote (seconds since the epoch)."""
        return max(share.until for share in self.learners)

    @property
    def total_requests_per_second(self) -> float:
        """The learners' shares together: about the quota."""
        return sum(share.requests_per_second for share in self.learners)

    def start_rates(self, now: float) -> tuple[float, float] | None:
        """
        The request and token rates (per second) a new hook starts from: the median share of the learners,
        times :func:`trust` of the record's age; ``None`` when the record is too old to use.

        :param now: seconds since the epoch.
        """
        factor = trust(now - self.learned_at)
        if factor <= 0:
            return None
        requests = statistics.median(share.requests_per_second for share in self.learners)
        tokens = statistics.median(share.tokens_per_second for share in self.learners)
        return requests * factor, tokens * factor

    def with_share(self, share: LearnerShare) -> LearnedQuota:
        """
        This record with ``share`` written in: its own earlier entry replaced, learners whose spans ended
        before ``share`` began dropped (an earlier job), the rest kept (they ran beside it, on one quota).
        """
        kept = [
            other for other in self.learners if other.learner != share.learner and other.until >= share.since
        ]
        kept.sort(key=lambda other: other.until)
        return LearnedQuota((*kept[-(MAX_LEARNERS - 1) :], share))

    def to_json(self) -> str:
        """The record as compact JSON (numbers and learner ids only)."""
        return json.dumps(
            {
                "version": _VERSION,
                "learners": [
                    {
                        "learner": share.learner,
                        "requests_per_second": round(share.requests_per_second, 6),
                        "tokens_per_second": round(share.tokens_per_second, 3),
                        "since": round(share.since, 3),
                        "until": round(share.until, 3),
                    }
                    for share in self.learners
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> LearnedQuota:
        """
        Read a record written by :meth:`to_json`.

        :raises ValueError: the text is not such a record (the message never quotes it).
        """
        try:
            data: Any = json.loads(text)
        except (TypeError, ValueError):
            raise ValueError("the learned quota record is not JSON") from None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise ValueError(f"the learned quota record is not a version {_VERSION} record")
        entries = data.get("learners")
        if not isinstance(entries, list) or not entries:
            raise ValueError("the learned quota record has no learners")
        learners = []
        for entry in entries[-MAX_LEARNERS:]:
            if not isinstance(entry, dict):
                raise ValueError("a learner of the learned quota record is not an object")
            try:
                learners.append(
                    LearnerShare(
                        learner=str(entry["learner"]),
                        requests_per_second=_number(entry["requests_per_second"]),
                        tokens_per_second=_number(entry["tokens_per_second"]),
                        since=_number(entry["since"]),
                        until=_number(entry["until"]),
                    )
                )
            except KeyError as err:
                raise ValueError(f"a learner of the learned quota record has no {err.args[0]!r}") from None
        return cls(tuple(learners))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a learner's rates and times must be numbers")
    return float(value)
