"""neardup from Python: near-duplicates and rewrites of news stories.

The same engine as the ``neardup`` command, in the same process::

    import neardup

    articles = [
        {"id": "a", "text": "The central bank raised its key rate by half a point on Tuesday."},
        {"id": "b", "text": "The central bank raised its key rate by half a point on Tuesday!"},
        {"id": "c", "text": "A storm closed schools across the region for a second day."},
    ]
    for cluster in neardup.cluster(articles, threshold=0.5):
        print(cluster["representative"], [m["id"] for m in cluster["members"]])
    kept = neardup.dedup(articles)                      # a and c: the dicts given
    report = neardup.evaluate(articles, [{"a": "a", "b": "b", "same_story": True}])
    shared = neardup.compare(articles[0], articles[1])["passages"]

    with neardup.Index.create("feed-index") as index:   # or neardup.Index("feed-index")
        verdict = index.add({"id": "x1", "text": articles[0]["text"]})  # durable on return
        print(verdict["verdict"])  # new, duplicate, rewrite (or rejected: an unusable record)

Records are mappings (dicts) with an ``id`` and a ``text`` (other names with
``id_field`` and ``text_field``); a ``date`` (ISO 8601 text, seconds since 1970, or a
``datetime``) is read as the command reads it, a ``title`` is used at the story level,
and every other field is kept as the command keeps it (a cluster's members carry them
as ``metadata``). A plain string is a text whose id is its position. Results are the
records the command prints as JSON Lines, as dicts: see the project's README for every
field.

Batch functions raise :class:`BadRecord` (a ``ValueError``; ``args[1]`` is the record's
position) for a record that cannot be used: a missing or empty text (or one without a
word: only punctuation, symbols, emoji or invisible characters), an id given twice,
a value that cannot be written as JSON. An index answers such a record with a ``rejected`` verdict in its
place instead, so that what was added before and after it is not lost.

Every call releases the GIL and runs on all cores (``threads`` to limit it); the output
is the same whatever the number of threads. Ctrl-C stops a batch call part way (within
about a tenth of a second) and raises ``KeyboardInterrupt`` from it. It stops
:meth:`Index.add` and :meth:`Index.query` between batches of 4,096 records and raises
:class:`Interrupted` (a ``KeyboardInterrupt``), whose ``answers`` are those of the
records before the stop: they were added, the rest were not.
"""

from __future__ import annotations

import datetime
import json
import numbers
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional, Union

from . import _native
from ._native import BadRecord, Interrupted, NeardupError

__all__ = ["BadRecord", "Index", "Interrupted", "NeardupError", "cluster", "compare", "dedup", "evaluate", "pairs"]

Record = Union[Mapping[str, Any], str]
Window = Union[str, int, float, datetime.timedelta, None]
#: ``progress(stage, done, total)``: see :func:`cluster`.
Progress = Optional[Callable[[str, int, Optional[int]], Any]]

#: The story level's default time window: dated articles further apart are two stories.
DEFAULT_WINDOW = "72h"
#: The story model's default cut: pairs scored at least this are one story.
DEFAULT_STORY_THRESHOLD = _native.DEFAULT_STORY_THRESHOLD

_DEFAULT = object()

# Every setting of a run, with the command's defaults; each function passes those it takes.
_RUN = dict(
    level="near-copy",
    threshold=0.5,
    story_threshold=None,
    window=DEFAULT_WINDOW,
    stats=None,
    shingle="words:5",
    num_perm=128,
    seed=42,
    mode="connected",
    representative="earliest",
    passages=False,
    min_passage_words=8,
    passage_gap=4,
    boilerplate_docs=20,
    id_field="id",
    text_field="text",
    date_field="date",
    threads=None,
)


def cluster(
    records: Iterable[Record],
    *,
    level: str = "near-copy",
    threshold: float = 0.5,
    story_threshold: Optional[float] = None,
    window: Window = DEFAULT_WINDOW,
    stats: Optional[str] = None,
    shingle: str = "words:5",
    num_perm: int = 128,
    seed: int = 42,
    mode: str = "connected",
    representative: str = "earliest",
    passages: bool = False,
    min_passage_words: int = 8,
    passage_gap: int = 4,
    boilerplate_docs: int = 20,
    id_field: str = "id",
    text_field: str = "text",
    date_field: str = "date",
    threads: Optional[int] = None,
    progress: Progress = None,
) -> list[dict[str, Any]]:
    """Groups records into clusters of near-copies (``level="near-copy"``) or of one
    story (``level="story"``: copies, updates and rewrites), as ``neardup cluster``.

    Returns one dict per cluster of two or more records, largest first: ``members``,
    ``representative`` (chosen by ``representative``), ``pairs`` with their scores, and
    at the story level each pair's ``kind`` and the score components.

    ``threshold``: lowest word 5-gram Jaccard of a near-copy pair. ``story_threshold``:
    lowest story-model probability of one story (default ``DEFAULT_STORY_THRESHOLD``).
    ``window``: dated records further apart are never one story (``"72h"``, ``"3d"``,
    seconds as an int, a ``timedelta``; ``None`` or ``"none"`` for any distance; a str
    of digits alone, ``"72"``, is refused as the command refuses it). ``stats``: a statistics file
    (``neardup stats count``) to weigh words by, instead of the records themselves,
    when they are too few to tell rare words from common ones. ``mode="leader"`` keeps
    only members similar to the representative instead of connected components.

    ``representative``: the member that represents a cluster (and the one :func:`dedup`
    keeps): ``"earliest"`` (earliest date, undated last, then longest, then smallest id),
    ``"longest"`` (then earliest, then smallest id) or ``"first"`` (first given).
    ``shingle`` (``"words:N"`` or ``"chars:N"``), ``num_perm`` (MinHash slots, the
    library's bounds) and ``seed``: how texts are fingerprinted, as the command's
    ``--shingle``, ``--num-perm`` and ``--seed``. ``id_field``, ``text_field``,
    ``date_field``: the records' fields. ``threads``: worker threads, 1 to 1024 (default:
    one per core).

    ``story_threshold``, ``window`` and ``stats`` are story-level settings: given with
    ``level="near-copy"`` they raise ``ValueError`` rather than be ignored, as
    ``threshold``, ``num_perm`` and ``mode`` do with ``level="story"``.

    ``passages=True`` adds to each pair the passages its two texts share (byte offsets
    in both, exact or with up to ``passage_gap`` differing words, at least
    ``min_passage_words`` long; a passage found in ``boilerplate_docs`` or more records
    is marked boilerplate) and the share of each text they cover. Those three settings
    tune passages alone: given without ``passages=True`` they raise ``ValueError``.

    ``progress``: a callable taking ``(stage, done, total)``, called as the run goes
    (from worker threads, at most ten times a second per stage, and at the start and end
    of each): ``stage`` is ``"read"`` (``done`` in bytes), ``"weigh"`` (records),
    ``"candidates"`` (LSH bands), ``"verify"`` (pairs), ``"cluster"``, ``"passages"``
    (pairs); ``total`` is ``None`` where it is not known. An exception it raises stops
    the run, as Ctrl-C does, and is raised from the call.
    """
    return _records(_native.analyse(_batch(records), "clusters", _run(locals()), progress))


def pairs(
    records: Iterable[Record],
    *,
    level: str = "near-copy",
    threshold: float = 0.5,
    story_threshold: Optional[float] = None,
    window: Window = DEFAULT_WINDOW,
    stats: Optional[str] = None,
    shingle: str = "words:5",
    num_perm: int = 128,
    seed: int = 42,
    passages: bool = False,
    min_passage_words: int = 8,
    passage_gap: int = 4,
    boilerplate_docs: int = 20,
    id_field: str = "id",
    text_field: str = "text",
    date_field: str = "date",
    threads: Optional[int] = None,
    progress: Progress = None,
) -> list[dict[str, Any]]:
    """Every similar pair, as ``neardup pairs``: ``a``, ``b``, ``jaccard`` (exact),
    ``estimated_jaccard``, both containments; at the story level the pair's ``kind``
    (copy, update, rewrite), its ``score`` and the components behind it; with
    ``passages=True`` the passages the two share. The arguments are those of
    :func:`cluster`."""
    return _records(_native.analyse(_batch(records), "pairs", _run(locals()), progress))


def dedup(
    records: Iterable[Record],
    *,
    level: str = "near-copy",
    threshold: float = 0.5,
    story_threshold: Optional[float] = None,
    window: Window = DEFAULT_WINDOW,
    stats: Optional[str] = None,
    shingle: str = "words:5",
    num_perm: int = 128,
    seed: int = 42,
    mode: str = "connected",
    representative: str = "earliest",
    report: bool = False,
    id_field: str = "id",
    text_field: str = "text",
    date_field: str = "date",
    threads: Optional[int] = None,
    progress: Progress = None,
) -> Any:
    """The records to keep, as ``neardup dedup`` keeps them: every record but the
    non-representative members of each cluster, in input order. They are the very
    objects given, untouched.

    A record repeating an earlier record's id with the same text is dropped as a copy;
    one repeating an id with other text, or one that cannot be used, raises
    :class:`BadRecord`.

    ``report=True`` returns ``(kept, dropped)``: ``dropped`` lists what was left out and
    why, as ``neardup dedup --report`` writes it (``id``, ``index`` in ``records``,
    ``kept``: the id kept in its place, ``cluster``, scores, ``reason``). The other
    arguments are those of :func:`cluster`.
    """
    given = list(_batch(records))
    kept, dropped = _native.dedup(given, _run(locals()), report, progress)
    kept = [given[i] for i in kept]
    if not report:
        return kept
    dropped = _records(dropped)
    for record in dropped:
        record["index"] = _position(record.pop("location"))
    return kept, dropped


def evaluate(
    records: Iterable[Record],
    gold: Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]]],
    *,
    level: str = "near-copy",
    score: Optional[str] = None,
    min_threshold: float = 0.1,
    max_threshold: float = 1.0,
    step: float = 0.05,
    beta: Optional[float] = None,
    explain_at: Optional[float] = None,
    bins: int = 20,
    bands: Optional[int] = None,
    rows: Optional[int] = None,
    bucket_cap: int = 1000,
    mode: str = "connected",
    window: Window = DEFAULT_WINDOW,
    stats: Optional[str] = None,
    shingle: str = "words:5",
    num_perm: int = 128,
    seed: int = 42,
    strict: bool = False,
    plots: Union[str, "os.PathLike[str]", None] = None,
    plot_format: str = "both",
    gold_fields: Optional[Mapping[str, Optional[str]]] = None,
    gold_shape: Optional[str] = None,
    gold_format: Optional[str] = None,
    id_field: str = "id",
    text_field: str = "text",
    date_field: str = "date",
    threads: Optional[int] = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Precision, recall, F1 and adjusted Rand index at every threshold, from one run,
    as ``neardup eval --format json`` reports them.

    ``gold``: judged pairs (``{"a": ID, "b": ID, "same_story": bool}``, an optional
    ``label`` breaking results down by kind) or a cluster label per record
    (``{"id": ID, "cluster": LABEL}``), as mappings or as a JSON Lines or CSV file.
    ``gold_fields`` renames their fields: keys ``a``, ``b``, ``label`` (the boolean, or
    ``"yes"``/``"no"``, 1/0, as in a CSV file; default ``same_story`` or ``duplicate``,
    which must agree where a pair has both), ``kind``, ``id``, ``cluster``.

    Thresholds run from ``min_threshold`` to ``max_threshold`` by ``step``; ``score`` is
    what is swept (``jaccard``, ``estimated``, ``containment-min``, ``containment-max``;
    at ``level="story"`` the story score). A judged pair counts as predicted one story
    when its records share a cluster. ``beta`` also picks a threshold by F-beta;
    ``explain_at`` explains misses at that threshold instead of the best by F1.

    Gold ids not among the records are left out with a warning (listed under
    ``["gold"]["unknown_ids"]``); ``strict=True`` makes them an error. ``plots``: a
    directory to write the charts to (``eval-sweep`` and ``eval-scores``, as SVG and
    PNG, or ``plot_format="svg"``/``"png"``); the paths written are under ``"charts"``.
    The other arguments are those of :func:`cluster`.
    """
    names = dict(a="a", b="b", label=None, kind="label", id="id", cluster="cluster")
    unknown = set(gold_fields or {}) - set(names)
    if unknown:
        raise ValueError(f"gold_fields takes {sorted(names)}, not {sorted(unknown)}")
    names.update(gold_fields or {})
    sweep = dict(
        score=score,
        min_threshold=_real("min_threshold", min_threshold, above=True),
        max_threshold=_real("max_threshold", max_threshold, above=True),
        step=_real("step", step, above=True),
        beta=None if beta is None else _real("beta", beta, high=None),
        explain_at=None if explain_at is None else _real("explain_at", explain_at, above=True),
        bins=_int("bins", bins, 1),
        bands=None if bands is None else _int("bands", bands, 1),
        rows=None if rows is None else _int("rows", rows, 1),
        bucket_cap=_int("bucket_cap", bucket_cap, 1),
        strict=strict,
        plots=None if plots is None else os.fspath(plots),
        plot_format=plot_format,
        gold_fields=names,
        gold_shape=gold_shape,
        gold_format=gold_format,
    )
    if not isinstance(gold, (str, os.PathLike)):
        # One dict would be iterated as its keys: the gold is a list of them.
        gold = list(_batch(gold, "gold", "a file name or a list of dicts (judged pairs or cluster labels)"))
    report, charts = _native.evaluate(_batch(records), gold, sweep, _run(locals()), progress)
    result = json.loads(report)
    result["charts"] = [str(path) for path in charts]
    skipped = result["gold"].get("skipped", 0)
    if skipped:
        ids = result["gold"].get("unknown_ids", [])
        warnings.warn(
            f"{_count(skipped, 'gold record', 'gold records')} left out: "
            f"{_count(len(ids), 'id is', 'ids are')} not among the records "
            f"(e.g. {', '.join(ids[:3])}); strict=True makes this an error",
            stacklevel=2,
        )
    return result


def compare(
    a: Record,
    b: Record,
    *,
    corpus: Optional[Iterable[Record]] = None,
    window: Window = DEFAULT_WINDOW,
    stats: Optional[str] = None,
    shingle: str = "words:5",
    num_perm: int = 128,
    seed: int = 42,
    min_passage_words: int = 8,
    passage_gap: int = 4,
    boilerplate_docs: int = 20,
    id_field: str = "id",
    text_field: str = "text",
    date_field: str = "date",
    threads: Optional[int] = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Two records side by side, as ``neardup compare --format json``: both texts, their
    Jaccard and containments, the passages they share (byte offsets in both texts), and
    the story level's verdict with every score component (``story``).

    ``a`` and ``b`` are records or plain texts (named ``"a"`` and ``"b"``). ``corpus``:
    records to weigh words by for the story verdict, and to tell boilerplate passages
    (found in ``boilerplate_docs`` or more records) from shared story text; it may hold
    ``a`` and ``b`` themselves, and a record repeating an id counts once. Without it,
    words are weighed over the two records alone (or by ``stats``, a statistics file).
    ``progress`` reports the reading of the records, as in :func:`cluster`.
    """
    settings = _run(locals())

    def one(record: Record, name: str) -> list[Record]:
        if isinstance(record, str):
            return [{id_field: name, text_field: record}]
        if not isinstance(record, Mapping):
            raise TypeError(
                f"{name}: expected a dict with {json.dumps(id_field)} and {json.dumps(text_field)} "
                f"or a str, not {type(record).__name__}"
            )
        return [record]

    corpus = None if corpus is None else list(_batch(corpus, "corpus"))
    if corpus is not None:
        _warn_repeated_ids(one(a, "a") + one(b, "b"), corpus, id_field, text_field)
    return json.loads(_native.compare(one(a, "a"), one(b, "b"), corpus, settings, progress))


def _warn_repeated_ids(pair: list[Record], corpus: list[Record], id_field: str, text_field: str) -> None:
    """Warns of a corpus record repeating an id with other text, as ``neardup compare``
    warns: only the first record of an id is counted, so the other text is left out."""
    seen: dict[str, tuple[Any, str]] = {}
    named = [(name, r) for name, r in zip(("a", "b"), pair)]
    named += [(f"corpus[{i}]", {id_field: str(i), text_field: r} if isinstance(r, str) else r)
              for i, r in enumerate(corpus)]
    for name, record in named:
        if not isinstance(record, Mapping) or id_field not in record:
            continue  # the native call says what is wrong with it
        key = str(record[id_field])
        first = seen.setdefault(key, (record.get(text_field), name))
        if first[1] != name and first[0] != record.get(text_field):
            warnings.warn(
                f"{name}: duplicate id {key!r} with other text than {first[1]}'s: it is left out",
                stacklevel=3,
            )


def _run(given: dict[str, Any]) -> dict[str, Any]:
    """The run settings for the native call: the function's own, defaults for the rest,
    each checked here so that a wrong one is named by its keyword."""
    settings = {key: given.get(key, default) for key, default in _RUN.items()}
    for key in ("level", "shingle", "mode", "representative", "id_field", "text_field", "date_field"):
        if not isinstance(settings[key], str):
            raise TypeError(f"{key} must be a str, not {type(settings[key]).__name__}")
    if not isinstance(settings["passages"], bool):
        raise TypeError(f"passages must be True or False, not {type(settings['passages']).__name__}")
    settings.update(
        threshold=_real("threshold", settings["threshold"], above=True),
        story_threshold=_optional(_real, "story_threshold", settings["story_threshold"]),
        window=_window(settings["window"]),
        num_perm=_int("num_perm", settings["num_perm"], 1, _native.MAX_NUM_PERM),
        seed=_int("seed", settings["seed"], 0),
        min_passage_words=_int("min_passage_words", settings["min_passage_words"], 1, _USIZE),
        passage_gap=_int("passage_gap", settings["passage_gap"], 0, _native.MAX_PASSAGE_GAP),
        # Every shared passage is in two documents: boilerplate is found in more.
        boilerplate_docs=_int("boilerplate_docs", settings["boilerplate_docs"], 3),
        threads=_optional(_int, "threads", settings["threads"], 1, _native.MAX_THREADS),
    )
    if settings["level"] == "story":
        # Refused rather than ignored, as the command refuses the flags.
        for key, instead in _NEAR_COPY_ONLY.items():
            if settings[key] != _RUN[key]:
                raise ValueError(f"{key} is a near-copy setting, unused at level='story': {instead}")
    elif "level" in given and settings["level"] in ("near-copy", "copy"):
        # The other way round (compare, which takes no level, reads them for its story verdict).
        for key in _STORY_ONLY:
            value = given.get(key, _RUN[key])
            if value is not _RUN[key] and value != _RUN[key]:
                raise ValueError(
                    f"{key} is a story-level setting, unused at level={settings['level']!r}: it needs level='story'"
                )
    if "passages" in given and not settings["passages"]:
        # cluster and pairs read these only with passages=True (compare always aligns).
        for key in _PASSAGE_TUNING:
            if settings[key] != _RUN[key]:
                raise ValueError(f"{key} tunes the passages of passages=True: it needs passages=True")
    if settings["stats"] is not None:
        settings["stats"] = os.fspath(settings["stats"])
    return settings


# The near-copy settings the story level does not read, and what it uses instead.
_NEAR_COPY_ONLY = dict(
    threshold="the story level decides by story_threshold (a probability)",
    num_perm="the story level's signature has its own size",
    mode="story clusters are linked by the story model; representative still applies",
)


# The settings that tune passages=True.
_PASSAGE_TUNING = ("min_passage_words", "passage_gap", "boilerplate_docs")


# The story-level settings the near-copy level does not read.
_STORY_ONLY = ("story_threshold", "window", "stats")


# The largest integers the native side takes (u64, and usize on 64-bit machines); the
# library's own bounds (num_perm, passage_gap, threads) are _native's MAX_ constants.
_U64 = 2**64 - 1
_USIZE = _U64


def _real(name: str, value: Any, low: float = 0.0, high: Optional[float] = 1.0, above: bool = False) -> float:
    """``value`` as a float, if it is a number (not a bool or a str) from ``low`` (above it,
    if ``above``) to ``high``."""
    if high is None:
        span = f"above {low}" if above else f"at least {low}"
    else:
        span = f"in {'(' if above else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number {span}, not {type(value).__name__}")
    value = float(value) + 0.0  # -0.0 as 0.0
    if not ((low < value or (low == value and not above)) and (high is None or value <= high)):  # NaN fails too
        raise ValueError(f"{name} must be {span}, not {value}")
    if 0 < abs(value) < _SMALLEST_ABOVE_ZERO:
        raise ValueError(f"{name} must be {span}; the smallest above 0 taken is {_SMALLEST_ABOVE_ZERO:g}, not {value}")
    return value


# As the command's fractional flags: nothing between 0 and a millionth means anything as
# a similarity, a probability or a step.
_SMALLEST_ABOVE_ZERO = 1e-6


def _int(name: str, value: Any, low: int, high: int = _U64) -> int:
    """``value`` as an int, if it is an integer (not a bool) from ``low`` to ``high``."""
    span = f"from {low} to 2**64 - 1" if high == _U64 else f"from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer {span}, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer {span}, not {value}")
    return int(value)


def _optional(check: Callable[..., Any], name: str, value: Any, *bounds: Any) -> Any:
    return None if value is None else check(name, value, *bounds)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _batch(
    records: Any, name: str = "records", expected: str = "an iterable of records (dicts or str)"
) -> Iterable[Any]:
    """``records`` if it is an iterable of items: one dict or str is not (iterating it
    would read its keys or characters as items). ``name`` must be ``expected``."""
    if isinstance(records, (str, bytes, bytearray, Mapping)) or not isinstance(records, Iterable):
        raise TypeError(f"{name} must be {expected}, not {type(records).__name__}")
    return records


def _records(json_lines: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in json_lines.splitlines()]


def _position(location: str) -> Optional[int]:
    """A record's index from the ``records:LINE`` the native call names it by."""
    name, _, line = location.rpartition(":")
    return int(line) - 1 if name == "records" and line.isdigit() else None


class Index:
    """A persistent feed index, as ``neardup index`` keeps it: each article added gets a
    verdict (``new``, ``duplicate`` of an indexed one, or at the story level ``rewrite``)
    and is durable on disk when the call returns, so a crash loses nothing answered.

    Opening for writing takes the index's lock: one writer at a time, across processes
    (``read_only=True`` opens a view that can only query). A read-only view follows the
    writer: each call first takes in what was committed since (articles added, and after
    a removal or compaction the new generation), so it answers as a view opened just then
    would; a removed article is no longer matched. Use it as a context manager, or call
    :meth:`close`, to release the lock.

    An ``Index`` belongs to the process that opened it. In a process forked from that one
    (a ``multiprocessing`` worker, on Linux), every call on it raises
    :class:`NeardupError`: open the index in that process instead. At the fork such a
    copy lets go of the index's files, so :meth:`close` in the opener still releases
    the lock.
    """

    def __init__(
        self,
        path: str,
        *,
        read_only: bool = False,
        id_field: str = "id",
        text_field: str = "text",
        date_field: str = "date",
    ) -> None:
        self._id_field = id_field
        self._text_field = text_field
        self._native = _native.Index(
            str(path),
            read_only=read_only,
            id_field=id_field,
            text_field=text_field,
            date_field=date_field,
        )
        _OPEN.add(self)

    @classmethod
    def create(
        cls,
        path: str,
        *,
        level: str = "copy",
        threshold: float = 0.5,
        story_threshold: Optional[float] = None,
        window: Window = _DEFAULT,  # type: ignore[assignment]
        stats: Optional[str] = None,
        shingle: str = "words:5",
        num_perm: int = 128,
        seed: int = 42,
        id_field: str = "id",
        text_field: str = "text",
        date_field: str = "date",
    ) -> "Index":
        """Creates an empty index in ``path`` (a new or empty directory; it is built
        beside it and renamed into place, so a create that fails leaves no index) and
        opens it for writing. ``level="story"`` also answers ``rewrite`` for another
        version of a story; its ``window`` defaults to 72 hours (``None``: any distance; at the copy
        level the default is ``None``). ``stats``: statistics to score words by (else the
        index counts them as articles arrive). ``threshold``, ``story_threshold``,
        ``shingle``, ``num_perm`` and ``seed`` are those of :func:`cluster`, kept with the
        index; ``id_field``, ``text_field`` and ``date_field`` name the articles' fields
        for this opening only, as when opening with ``Index(path, ...)``."""
        if window is _DEFAULT:
            window = DEFAULT_WINDOW if level == "story" else None
        for key, value in (("level", level), ("shingle", shingle)):
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a str, not {type(value).__name__}")
        _native.Index.create(
            str(path),
            level=level,
            threshold=_real("threshold", threshold, above=True),
            shingle=shingle,
            num_perm=_int("num_perm", num_perm, 1, _native.MAX_NUM_PERM),
            seed=_int("seed", seed, 0),
            window=_window(window),
            story_threshold=_optional(_real, "story_threshold", story_threshold),
            stats=None if stats is None else str(stats),
        )
        return cls(path, id_field=id_field, text_field=text_field, date_field=date_field)

    @staticmethod
    def repair(path: str, *, discard_damaged: bool = False) -> dict[str, Any]:
        """Repairs the index in ``path`` whose article log is damaged (opening it raises
        :class:`NeardupError` saying ``... is damaged at byte N ...``), as ``neardup index
        repair`` does, and returns its report, the object ``neardup index repair --format
        jsonl`` prints: ``outcome`` (``"repaired"``, ``"cut_unfinished_write"`` or
        ``"nothing_to_repair"``), ``kept`` (the intact articles kept, in the order added),
        ``damaged`` (the stretches left out, each ``{"offset", "bytes"}``),
        ``header_damaged``, ``unfinished_write``, ``log``, ``log_bytes`` and
        ``repaired_log_bytes``, ``generation`` and ``repaired_generation``, ``kept_aside``
        (where the damaged log now is, ``None`` when nothing was rewritten or
        ``discard_damaged=True`` deleted it) and ``verdicts_changed`` (ids of kept
        articles whose verdict, decided again without what was left out, differs from the
        stored one).

        The kept articles are added again to a new generation of the log, so the index
        then answers as one built from them alone; a crash during the repair leaves the
        damaged index or the repaired one, never a mix. An index that is not damaged is
        left as it is (``"nothing_to_repair"``). It takes the index's lock: close any
        :class:`Index` open for writing on it first (in this process or another). A
        damaged ``index.meta`` or ``story.stats`` cannot be repaired (it raises)."""
        if not isinstance(discard_damaged, bool):
            raise TypeError(f"discard_damaged must be True or False, not {type(discard_damaged).__name__}")
        report: dict[str, Any] = json.loads(_native.Index.repair(str(path), discard_damaged=discard_damaged))
        return report

    def add(self, records: Union[Mapping[str, Any], Iterable[Mapping[str, Any]]]) -> Any:
        """Decides and adds one record (returns its verdict) or many (returns a list, one
        answer per record, in order). A record that cannot be used (not a dict, no text,
        an id indexed with other text, a value JSON cannot hold such as NaN or ``bytes``,
        ...) is answered ``{"verdict": "rejected", "index": ..., "id": ..., "reason":
        ...}`` and not added; a record whose id is already indexed with the same text is
        not added again and gets its stored verdict.

        Ctrl-C stops a long call between batches of 4,096 records (within about a tenth
        of a second, plus the batch being decided) and raises :class:`Interrupted`, a
        ``KeyboardInterrupt`` whose ``answers`` list answers the first
        ``len(answers)`` records: those were added (durable), none after them was. Add
        ``records[len(answers):]`` to go on."""
        return self._ingest(self._native.add, records)

    def query(self, records: Union[Mapping[str, Any], Iterable[Mapping[str, Any]]]) -> Any:
        """Like :meth:`add`, without adding: each record is compared with the index
        only. ``indexed`` says whether its id is already in the index."""
        return self._ingest(self._native.query, records)

    def remove(self, ids: Union[str, Iterable[str]]) -> dict[str, bool]:
        """Removes articles by id (a takedown): one id (a str) or many (an iterable of
        them); for each id, whether it was there. The index's log is rewritten without
        them, so give many ids in one call."""
        # One str is one id, as one dict is one record to add: not its characters.
        if isinstance(ids, str):
            ids = [ids]
        ids = [str(i) for i in _batch(ids, "ids", "a str or an iterable of str")]
        return dict(zip(ids, self._native.remove(ids)))

    def compact(self) -> dict[str, Any]:
        """Removes the articles older than the index's window before its clock (its
        newest date, never later than now), as ``neardup index compact`` does, and
        returns ``{"removed", "kept", "log_bytes": [before, after]}``. A feed with a
        window calls it now and then (daily, say), or memory and disk grow without end;
        it rewrites the log into a new generation, so a crash leaves the old index or the
        new one, whole. An index without a window has nothing to remove."""
        removed, kept, before, after = self._native.compact()
        return {"removed": removed, "kept": kept, "log_bytes": [before, after]}

    def stats(self) -> dict[str, Any]:
        """Settings and counts, as ``neardup index stats --format jsonl``."""
        return json.loads(self._native.stats())

    def clusters(self, min_size: int = 2) -> list[dict[str, Any]]:
        """Clusters of at least ``min_size`` articles, as ``neardup index export
        --clusters``: ``cluster`` (its first article's id), ``size``, ``members``."""
        return _records(self._native.clusters(_int("min_size", min_size, 0, _USIZE)))

    def close(self) -> None:
        """Releases the index and its lock; later calls raise :class:`NeardupError`. In a
        process forked from the one that opened it, lets go of that process's copy only
        (the lock stays with the opener)."""
        self._native.close()

    def __len__(self) -> int:
        return len(self._native)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ingest(self, call: Any, records: Union[Mapping[str, Any], Iterable[Mapping[str, Any]]]) -> Any:
        one = isinstance(records, Mapping)
        try:
            batch = [records] if one else list(_batch(records, expected="a dict or an iterable of dicts"))
            # A record that is not a mapping is answered in its place, as other unusable
            # records are, so that the rest of the batch is still added.
            usable = [i for i, record in enumerate(batch) if isinstance(record, Mapping)]
        except KeyboardInterrupt:
            # Still the documented Interrupted, so a caller's handler need not tell apart
            # when the interrupt came.
            stop = Interrupted("stopped by Ctrl-C (KeyboardInterrupt) before any record was added", "")
            stop.answers = []
            raise stop from None
        answers: list[Any] = [
            {
                "schema_version": 1,
                "id": None,
                "verdict": "rejected",
                "reason": f"expected a dict with {self._id_field!r} and {self._text_field!r}, "
                f"not {type(record).__name__}",
                "index": i,
            }
            for i, record in enumerate(batch)
        ]

        def place(native: str) -> int:
            """Puts the native answers in their records' places; how many records, from
            the first, are answered."""
            done = _records(native)
            for i, answer in zip(usable, done):
                if answer["verdict"] == "rejected":
                    del answer["line"]
                    answer["index"] = i
                    answer["id"] = batch[i].get(self._id_field)
                answers[i] = answer
            return usable[len(done)] if len(done) < len(usable) else len(batch)

        if usable:
            try:
                place(call([batch[i] for i in usable]))
            except Interrupted as stop:
                stop.answers = answers[: place(stop.args[1])]
                raise
        return answers[0] if one else answers


# Every Index open, so that a forked child lets go of its copies of their files at once
# (a process that inherits an index's lock file holds the lock while the file is open).
_OPEN: "weakref.WeakSet[Index]" = weakref.WeakSet()


def _release_in_child() -> None:
    for index in list(_OPEN):
        index._native.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_release_in_child)


def _window(window: Window) -> Optional[str]:
    if window is None:
        return None
    if isinstance(window, datetime.timedelta):
        window = window.total_seconds()
    if isinstance(window, (int, float)) and not isinstance(window, bool):
        if window != int(window):
            raise ValueError(f"window must be whole seconds, not {window}")
        return str(int(window))
    if isinstance(window, str):
        text = window.strip()
        # As the command's --window none.
        if text == "none":
            return None
        number = text.rstrip("smhdw")
        # A str of digits alone was taken as seconds: "72" meant 72 s, not the 72h
        # intended (the command refuses it too); an int is seconds, as documented.
        if number and all(c.isdigit() or c == "." for c in number) and number.count(".") <= 1:
            if number == text:
                raise ValueError(f"window {window!r}: give a unit, e.g. '{text}h' (s, m, h, d or w), "
                                 "or seconds as an int")
            if "." in number:
                raise ValueError(f"window {window!r}: give a whole number with a unit, e.g. '90m'")
        return window
    raise TypeError(f"window must be a str such as '72h', seconds or a timedelta, not {window!r}")
