"""The Python package against the command it wraps.

Run by tests/python.rs (part of `cargo test`), which builds the wheel, installs it into
target/py-venv and sets NEARDUP_BIN to the command built for the tests. By hand:
`maturin develop -m python/Cargo.toml` in a venv with pytest, then `pytest python/tests`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import neardup

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures" / "wire-story").glob("*.txt"))


def wire_story() -> list[dict]:
    return [{"id": p.name, "text": p.read_text()} for p in FIXTURES]


def reuters(n: int) -> list[dict]:
    data = os.environ.get("NEARDUP_DATA")
    path = Path(data, "reuters21578.jsonl") if data else None
    if path is None or not path.exists():
        pytest.skip("NEARDUP_DATA with reuters21578.jsonl is not there")
    with path.open() as f:
        return [json.loads(line) for _, line in zip(range(n), f)]


def edited_copies() -> list[dict]:
    """Articles and lightly edited copies of them, written here."""
    base = [
        "The central bank raised its key interest rate by half a point on Tuesday, the "
        "third rise this year, saying inflation had stayed above its target for too long.",
        "Storms closed schools and roads across the northern region for a second day, and "
        "officials warned that rivers could burst their banks before the weekend.",
        "The carmaker said quarterly profit fell by a fifth as sales of its electric models "
        "in Europe slowed and the cost of batteries rose again.",
    ]
    records = []
    for i, text in enumerate(base):
        records.append({"id": f"s{i}", "text": text, "date": f"2025-08-1{i}T09:00:00Z"})
        records.append({"id": f"s{i}-copy", "text": text.replace(" the ", " a ", 1) + " More soon.",
                        "date": f"2025-08-1{i}T10:00:00Z"})
    return records


@pytest.fixture(scope="module")
def command() -> str:
    binary = os.environ.get("NEARDUP_BIN")
    if not binary:
        pytest.skip("NEARDUP_BIN is not set (tests/python.rs sets it)")
    return binary


def run_command(command: str, args: list[str], records: list[dict], tmp_path: Path) -> list[dict]:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = subprocess.run([command, *args, str(path), "-q"], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


# --- batch ---------------------------------------------------------------------------

@pytest.mark.parametrize("level,extra", [("near-copy", {"threshold": 0.3}), ("story", {"story_threshold": 0.1})])
def test_cluster_and_pairs_give_the_commands_records(command, tmp_path, level, extra):
    records = wire_story() + edited_copies()
    flags = ["--level", level] + [
        arg for key, value in extra.items() for arg in (f"--{key.replace('_', '-')}", str(value))
    ]
    clusters = neardup.cluster(records, level=level, **extra)
    assert clusters == run_command(command, ["cluster", *flags], records, tmp_path)
    assert clusters, "the edited copies are found"
    pairs = neardup.pairs(records, level=level, **extra)
    assert pairs == run_command(command, ["pairs", *flags], records, tmp_path)


def test_cluster_matches_the_command_on_real_articles(command, tmp_path):
    records = reuters(4000)
    clusters = neardup.cluster(records)
    assert len(clusters) > 50
    assert clusters == run_command(command, ["cluster"], records, tmp_path)


def test_the_wire_story_is_one_story_at_a_low_cut():
    clusters = neardup.cluster(wire_story(), level="story", story_threshold=0.1)
    assert [sorted(m["id"] for m in c["members"]) for c in clusters] == [[p.name for p in FIXTURES]]
    assert {p["kind"] for p in clusters[0]["pairs"]} == {"rewrite"}
    assert all("components" in p for p in clusters[0]["pairs"])


def test_plain_strings_are_texts_named_by_position():
    texts = [r["text"] for r in edited_copies()]
    assert [sorted(m["id"] for m in c["members"]) for c in neardup.cluster(texts)] == [
        ["0", "1"], ["2", "3"], ["4", "5"]
    ]


def test_records_are_any_mapping_and_only_their_fields_are_read():
    class Article(Mapping):
        def __init__(self, **fields):
            self.fields = fields

        def __getitem__(self, key):
            return self.fields[key]

        def __iter__(self):
            return iter(self.fields)

        def __len__(self):
            return len(self.fields)

    plain = edited_copies()
    assert neardup.cluster([Article(**r) for r in plain]) == neardup.cluster(plain)
    numbered = [dict(r, id=n) for n, r in enumerate(plain)]
    assert [[m["id"] for m in c["members"]] for c in neardup.cluster(numbered)] == [
        ["0", "1"], ["2", "3"], ["4", "5"]
    ]


def test_other_fields_are_kept_as_the_command_keeps_them(command, tmp_path):
    records = [dict(r, source="wire", n=i, score=0.5, flag=i % 2 == 0, none=None,
                    tags=["a", "b"], nested={"k": [1, 2]}, text_first=r["text"][:10])
               for i, r in enumerate(edited_copies())]
    clusters = neardup.cluster(records)
    assert clusters == run_command(command, ["cluster"], records, tmp_path)
    assert clusters[0]["members"][0]["metadata"]["tags"] == ["a", "b"]
    when = dict(records[0], published=dt.datetime(2025, 8, 1, 9, 30))
    member = neardup.cluster([when, records[1]])[0]["members"][0]
    assert member["metadata"]["published"] == "2025-08-01T09:30:00"
    with pytest.raises(neardup.BadRecord, match=r'records\[0\]: field "extra" cannot be written as JSON'):
        neardup.cluster([dict(records[0], extra=object())])


def test_output_is_the_same_on_one_thread():
    records = wire_story() + edited_copies()
    for level in ("near-copy", "story"):
        assert neardup.cluster(records, level=level, threads=1) == neardup.cluster(records, level=level)


def test_dates_may_be_datetimes():
    text = edited_copies()[0]["text"]
    for early in (dt.datetime(2025, 8, 1, 9), dt.datetime(2025, 8, 1, 9, tzinfo=dt.timezone.utc),
                  dt.date(2025, 8, 1), "2025-08-01", 1754038800):
        records = [{"id": "late", "text": text, "date": "2025-08-20T00:00:00Z"},
                   {"id": "early", "text": text + " Updated.", "date": early}]
        assert neardup.cluster(records)[0]["representative"] == "early", early


def test_dates_that_cannot_be_read_are_warned_of_as_the_command_notes_them():
    text = edited_copies()[0]["text"]
    records = [{"id": "a", "text": text, "date": "next tuesday"},
               {"id": "b", "text": text + " Updated.", "date": "2025-08-20"},
               {"id": "c", "text": "another story", "date": "31-MAR-1987 605:12:19"}]
    calls = [lambda: neardup.cluster(records), lambda: neardup.pairs(records, level="story"),
             lambda: neardup.dedup(records),
             lambda: neardup.compare(records[0], records[1], corpus=records[2:])]
    for call in calls:
        with pytest.warns(UserWarning, match=r"^2 dates could not be read \(e\.g\. \"next tuesday\"\); "
                                             r"those records count as undated$") as caught:
            call()
        # Pointed at the caller, not at the package.
        assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neardup.cluster(records[1:2])


def test_a_story_window_keeps_far_apart_editions_apart():
    records = edited_copies()[:2]
    records[1] = dict(records[1], date="2025-09-30T00:00:00Z")
    kw = {"level": "story"}
    assert neardup.cluster(records, **kw) == []
    assert len(neardup.cluster(records, window=None, **kw)) == 1
    assert len(neardup.cluster(records, window=dt.timedelta(days=60), **kw)) == 1
    assert neardup.cluster(records, window="7d", **kw) == []


@pytest.mark.parametrize("records,index,message", [
    ([{"id": "a", "text": "x y z"}, {"id": "b"}], 1, 'records[1]: missing field "text"'),
    ([{"id": "a", "text": ""}], 0, "records[0]: empty text"),
    ([{"id": "a", "text": "one"}, {"id": "a", "text": "two"}], 1,
     'records[1]: duplicate id "a" (records[0] has it too)'),
    ([{"id": "a", "text": "ok"}, {"id": "b", "text": "bad \ud800"}], 1,
     'records[1]: field "text" is a string that is not valid Unicode'),
    (["ok", "bad \ud800"], 1, "records[1]: a string that is not valid Unicode"),
    ([{"id": "a", "text": "ok"}, {"id": "b", "text": "x", "n": float("nan")}], 1,
     'records[1]: field "n" is NaN, which JSON cannot hold'),
    ([{"id": "a", "text": b"bytes"}], 0, 'records[0]: field "text" cannot be written as JSON: TypeError'),
    ([{"id": "a", "text": "ok"}, {"id": ["b"], "text": "ok too"}], 1, "records[1]: "),
    ([{"id": "a", "text": "ok"}, {"id": {1, 2}, "text": "ok too"}], 1,
     'records[1]: field "id" cannot be written as JSON'),
    ([{"id": "a", "text": 5}], 0, "records[0]: "),
])
def test_a_bad_record_raises_naming_it(records, index, message):
    with pytest.raises(neardup.BadRecord) as raised:
        neardup.cluster(records)
    assert str(raised.value.args[0]).startswith(message), raised.value.args
    assert raised.value.args[1] == index
    assert isinstance(raised.value, ValueError)


def test_wrong_settings_raise_value_errors():
    records = edited_copies()
    for kwargs in ({"level": "storey"}, {"mode": "any"}, {"representative": "last"}, {"window": 0},
                   {"window": "3 fortnights", "level": "story"}, {"story_threshold": 2.0},
                   {"shingle": "bytes:3"}, {"threads": 0}):
        with pytest.raises(ValueError):
            neardup.cluster(records, **kwargs)
    with pytest.raises(TypeError, match=r"records\[1\]: expected a dict"):
        neardup.cluster([{"id": "a", "text": "x"}, 42])
    with pytest.raises(FileNotFoundError, match="/no/such/file.stats"):
        neardup.cluster(records, level="story", stats="/no/such/file.stats")


def test_one_record_is_not_a_batch():
    text = edited_copies()[0]["text"]
    calls = [neardup.cluster, neardup.pairs, neardup.dedup,
             lambda records: neardup.evaluate(records, [{"a": "0", "b": "1", "same_story": True}])]
    for call in calls:
        for one, kind in (({"id": "a", "text": text}, "dict"), (text, "str"), (b"abc", "bytes")):
            with pytest.raises(TypeError, match=rf"records must be an iterable of records \(dicts or str\), not {kind}"):
                call(one)
    with pytest.raises(TypeError, match="corpus must be an iterable of records"):
        neardup.compare(text, text, corpus=text)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"seed": -1}, ValueError, r"seed must be an integer from 0 to 2\*\*64 - 1, not -1"),
    ({"seed": 2**70}, ValueError, r"seed must be an integer from 0 to 2\*\*64 - 1"),
    ({"threads": -1}, ValueError, r"threads must be an integer from 1 to"),
    ({"num_perm": "128"}, TypeError, r"num_perm must be an integer from 1 to .*, not str"),
    ({"num_perm": 0}, ValueError, r"num_perm must be an integer from 1 to 65536, not 0"),
    ({"num_perm": 65537}, ValueError, r"num_perm must be an integer from 1 to 65536, not 65537"),
    ({"threads": 10**6}, ValueError, r"threads must be an integer from 1 to 1024, not 1000000"),
    ({"threads": 1025}, ValueError, r"threads must be an integer from 1 to 1024, not 1025"),
    ({"passage_gap": 33}, ValueError, r"passage_gap must be an integer from 0 to 32, not 33"),
    ({"boilerplate_docs": 2}, ValueError, r"boilerplate_docs must be an integer from 3 to"),
    ({"threshold": "0.5"}, TypeError, r"threshold must be a number in \(0, 1\], not str"),
    ({"threshold": True}, TypeError, r"threshold must be a number in \(0, 1\], not bool"),
    ({"threshold": 1.5}, ValueError, r"threshold must be in \(0, 1\], not 1.5"),
    ({"threshold": 0}, ValueError, r"threshold must be in \(0, 1\], not 0.0"),
    ({"threshold": float("nan")}, ValueError, r"threshold must be in \(0, 1\], not nan"),
    ({"threshold": 1e-7}, ValueError, r"threshold must be in \(0, 1\]; the smallest above 0 taken is 1e-06"),
    ({"story_threshold": 1e-300, "level": "story"}, ValueError, r"story_threshold must be in \[0, 1\]; the smallest"),
    ({"story_threshold": "x"}, TypeError, r"story_threshold must be a number"),
    ({"level": 1}, TypeError, r"level must be a str, not int"),
])
def test_wrong_settings_are_named_by_their_keyword(kwargs, error, message):
    with pytest.raises(error, match=message):
        neardup.cluster(["a b c"], **kwargs)


def test_settings_of_every_call_are_checked(tmp_path):
    with pytest.raises(ValueError, match="bins must be an integer from 1"):
        neardup.evaluate(["a b c", "a b c"], [{"a": "0", "b": "1", "same_story": True}], bins=0)
    with pytest.raises(TypeError, match="min_threshold must be a number"):
        neardup.evaluate(["a b c", "a b c"], [{"a": "0", "b": "1", "same_story": True}], min_threshold="0.1")
    with pytest.raises(ValueError, match="seed must be an integer from 0"):
        neardup.Index.create(tmp_path / "i", seed=-1)
    with pytest.raises(ValueError, match="num_perm must be an integer from 1 to 65536, not 0"):
        neardup.Index.create(tmp_path / "i", num_perm=0)
    with neardup.Index.create(tmp_path / "j") as index:
        with pytest.raises(ValueError, match="min_size must be an integer from 0"):
            index.clusters(min_size=-1)
    # The command's --window none.
    dated = [{"id": "a", "text": "x y z w v", "date": "2020-01-01"}, {"id": "b", "text": "x y z w v", "date": "2024-01-01"}]
    assert neardup.cluster(dated, level="story", window="none") == neardup.cluster(dated, level="story", window=None)
    assert neardup.cluster(dated, level="story", window="none")


def test_nothing_in_nothing_out():
    assert neardup.cluster([]) == []
    assert neardup.pairs(iter([])) == []


# --- dedup, evaluate, compare, passages, progress ---------------------------------------

def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def as_index(dropped: list[dict], path: Path) -> list[dict]:
    """The command's --report records with their file location read as a position."""
    for d in dropped:
        name, _, line = d.pop("location").rpartition(":")
        assert name == str(path)
        d["index"] = int(line) - 1
    return dropped


@pytest.mark.parametrize("level,extra", [("near-copy", {"threshold": 0.3}), ("story", {"story_threshold": 0.1})])
def test_dedup_keeps_what_the_command_keeps(command, tmp_path, level, extra):
    records = wire_story() + edited_copies()
    records.insert(3, dict(records[1]))  # sent twice: a copy by id and text
    path = write_jsonl(tmp_path / "records.jsonl", records)
    flags = ["--level", level] + [
        arg for key, value in extra.items() for arg in (f"--{key.replace('_', '-')}", str(value))
    ]
    done = subprocess.run([command, "dedup", str(path), "-q", "--report", str(tmp_path / "report.jsonl"), *flags],
                          capture_output=True, text=True)
    assert done.returncode == 2, "the command's exit code for a repeated id"
    out = done.stdout
    kept, dropped = neardup.dedup(records, level=level, report=True, **extra)
    assert kept == [json.loads(line) for line in out.splitlines()]
    assert len(kept) < len(records) - 1, "the copies are dropped"
    originals = {id(r) for r in records}
    assert all(id(r) in originals for r in kept), "the records given are returned, not copies"
    report = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert dropped == as_index(report, path)
    assert {"repeated_id"} <= {d["reason"] for d in dropped}
    assert neardup.dedup(records, level=level, **extra) == kept
    assert neardup.dedup(iter(records), level=level, threads=1, **extra) == kept


def test_dedup_matches_the_command_on_real_articles(command, tmp_path):
    records = reuters(4000)
    path = write_jsonl(tmp_path / "reuters.jsonl", records)
    out = subprocess.run([command, "dedup", str(path), "-q"], check=True, capture_output=True, text=True).stdout
    kept = neardup.dedup(records)
    assert [r["id"] for r in kept] == [json.loads(line)["id"] for line in out.splitlines()]
    assert len(records) - len(kept) > 100


def test_dedup_refuses_what_the_command_rejects():
    same_id = [{"id": "a", "text": "one two three"}, {"id": "a", "text": "four five six"}]
    with pytest.raises(neardup.BadRecord, match=r'records\[1\]: duplicate id "a"'):
        neardup.dedup(same_id)
    with pytest.raises(neardup.BadRecord, match=r'records\[1\]: missing field "text"'):
        neardup.dedup([{"id": "a", "text": "x"}, {"id": "b"}])
    assert neardup.dedup([]) == []
    assert neardup.dedup(["same words here", "same words here"]) == ["same words here"]


def gold_pairs() -> list[dict]:
    """Judged pairs of wire_story() + edited_copies(), written here."""
    names = [p.name for p in FIXTURES]
    pairs = [{"a": f"s{i}", "b": f"s{i}-copy", "same_story": True, "label": "copy"} for i in range(3)]
    pairs += [{"a": names[0], "b": names[k], "same_story": True, "label": "rewrite"} for k in (1, 2, 3, 4)]
    pairs += [{"a": "s0", "b": "s1", "same_story": False, "label": "unrelated"},
              {"a": "s1-copy", "b": names[2], "same_story": False, "label": "unrelated"}]
    return pairs


@pytest.mark.parametrize("level,flags", [("near-copy", []), ("story", ["--min-threshold", "0.05"])])
def test_evaluate_gives_the_commands_report(command, tmp_path, level, flags):
    records = wire_story() + edited_copies()
    path = write_jsonl(tmp_path / "records.jsonl", records)
    gold = write_jsonl(tmp_path / "gold.jsonl", gold_pairs())
    out = subprocess.run([command, "eval", str(path), "--gold", str(gold), "--level", level, *flags,
                          "--format", "json", "--no-plots", "-q"], check=True, capture_output=True, text=True).stdout
    expected = json.loads(out)
    kw = {"min_threshold": 0.05} if flags else {}
    result = neardup.evaluate(records, gold, level=level, **kw)
    assert result.pop("charts") == []
    assert result == expected
    from_memory = neardup.evaluate(records, gold_pairs(), level=level, **kw)
    assert from_memory["gold"].pop("file") == "gold"
    from_memory.pop("charts")
    expected["gold"].pop("file")
    assert from_memory == expected
    best = expected["best_f1"]
    assert best["precision"] == 1.0 and best["recall"] >= 3 / 7, "the copies found, nothing wrongly merged"


def test_evaluate_writes_charts_and_says_what_it_left_out(tmp_path):
    records = wire_story() + edited_copies()
    result = neardup.evaluate(records, gold_pairs(), plots=tmp_path / "charts")
    names = sorted(Path(p).name for p in result["charts"])
    assert names == ["eval-scores.png", "eval-scores.svg", "eval-sweep.png", "eval-sweep.svg"]
    assert (tmp_path / "charts" / "eval-sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert neardup.evaluate(records, gold_pairs(), plots=tmp_path / "svg", plot_format="svg")["charts"] == [
        str(tmp_path / "svg" / "eval-sweep.svg"), str(tmp_path / "svg" / "eval-scores.svg")]
    gold = gold_pairs() + [{"a": "s0", "b": "nowhere", "same_story": True}]
    with pytest.warns(UserWarning, match="1 gold record left out: 1 id is not among the records"):
        left_out = neardup.evaluate(records, gold)
    assert left_out["gold"]["unknown_ids"] == ["nowhere"]
    with pytest.raises(ValueError, match=r'gold\[9\]: id "nowhere" is not in the corpus'):
        neardup.evaluate(records, gold, strict=True)
    renamed = [{"left": g["a"], "right": g["b"], "dup": g["same_story"]} for g in gold_pairs()]
    plain = neardup.evaluate(records, gold_pairs())
    other = neardup.evaluate(records, renamed, gold_fields={"a": "left", "b": "right", "label": "dup"})
    assert other["thresholds"] == plain["thresholds"]


def test_evaluate_says_what_is_wrong(tmp_path):
    records = edited_copies()
    with pytest.raises(ValueError, match=r"gold\[0\]: missing label field: .*gold_fields\['label'\]"):
        neardup.evaluate(records, [{"a": "s0", "b": "s1"}])
    with pytest.raises(FileNotFoundError, match="no-gold.jsonl"):
        neardup.evaluate(records, tmp_path / "no-gold.jsonl")
    for kwargs in ({"score": "cosine"}, {"score": "story"}, {"step": 0}, {"min_threshold": 0},
                   {"plot_format": "gif", "plots": tmp_path}, {"gold_fields": {"c": "x"}},
                   {"gold_shape": "triples"}, {"level": "story", "bands": 4}):
        with pytest.raises(ValueError):
            neardup.evaluate(records, gold_pairs()[:3], **kwargs)


def test_evaluate_names_bad_gold_in_the_callers_terms():
    texts = [r["text"] for r in edited_copies()[:2]]
    pair = {"a": "0", "b": "1", "same_story": True}
    with pytest.raises(TypeError, match=r"^gold\[0\]: expected a dict, not tuple$"):
        neardup.evaluate(texts, [("0", "1", True)])
    with pytest.raises(TypeError, match=r"^gold must be a file name or a list of dicts .*, not dict$"):
        neardup.evaluate(texts, pair)
    with pytest.raises(ValueError, match=r"^gold\[1\]: .* labelled false here and true at gold\[0\]$"):
        neardup.evaluate(texts, [pair, {"a": "1", "b": "0", "same_story": False}])
    with pytest.raises(ValueError, match=r'^gold\[0\]: fields "same_story" and "duplicate" disagree '
                                         r"\(true and false\): give one, or name the one to read with "
                                         r"gold_fields\['label'\]$"):
        neardup.evaluate(texts, [dict(pair, duplicate="no")])
    # Spelled as in a CSV gold file, and both fields where they agree.
    assert neardup.evaluate(texts, [dict(pair, same_story="yes", duplicate=1)])["gold"]["positives"] == 1
    with pytest.raises(neardup.BadRecord, match=r'records\[0\]: field "id" is the integer \d+, out of range'):
        neardup.evaluate([{"id": 2**80, "text": texts[0]}, {"id": "1", "text": texts[1]}], [pair])
    with pytest.raises(neardup.BadRecord, match=r'gold\[0\]: field "a" is the integer \d+, out of range'):
        neardup.evaluate(texts, [dict(pair, a=2**80)])
    with pytest.raises(neardup.BadRecord, match=r'gold\[0\]: field "same_story" is NaN, which JSON cannot hold'):
        neardup.evaluate(texts, [dict(pair, same_story=float("nan"))])


def test_compare_gives_the_commands_comparison(command, tmp_path):
    records = wire_story()
    path = write_jsonl(tmp_path / "wire.jsonl", records)
    a, b = records[3], records[4]
    out = subprocess.run([command, "compare", "--in", str(path), a["id"], b["id"], "--format", "json", "-q"],
                         check=True, capture_output=True, text=True).stdout
    expected = json.loads(out)
    result = neardup.compare(a, b, corpus=records)
    assert (result["a"].pop("location"), result["b"].pop("location")) == ("a:1", "b:1")
    expected["a"].pop("location"), expected["b"].pop("location")
    assert result == expected
    assert result["passages"], "003 and 004 share quotations"
    first = result["passages"][0]
    for side, record in (("a", a), ("b", b)):
        span = first[side]
        assert record["text"].encode()[span["start"]:span["end"]].decode() == span["text"]
    assert "We were able to win the following concession" in first["a"]["text"]
    assert result["story"]["statistics_documents"] == 5


def test_compare_warns_of_a_corpus_id_repeated_with_other_text():
    a, b = edited_copies()[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neardup.compare(a, b, corpus=[a, b, a])  # the same records again: counted once
    with pytest.warns(UserWarning, match=r"corpus\[1\]: duplicate id 's0' with other text than a's: it is left out"):
        neardup.compare(a, b, corpus=[b, dict(a, text="Another text altogether, under a's id.")])


def test_evaluate_lists_the_scores_it_takes():
    with pytest.raises(ValueError, match="score must be one of jaccard, estimated, containment-min, containment-max, story"):
        neardup.evaluate(edited_copies(), gold_pairs()[:3], score="cosine")


def test_compare_takes_plain_texts_and_says_what_is_wrong():
    one = "The central bank raised its key interest rate by half a point on Tuesday, its third rise."
    result = neardup.compare(one, one.replace("third", "fourth"))
    assert (result["a"]["id"], result["b"]["id"]) == ("a", "b")
    assert 0.5 < result["jaccard"] < 1
    assert result["story"]["statistics_documents"] == 2
    with pytest.raises(neardup.BadRecord, match=r'b\[0\]: duplicate id "x" \(a\[0\] has it too\)'):
        neardup.compare({"id": "x", "text": "a b c"}, {"id": "x", "text": "d e f"})
    with pytest.raises(neardup.BadRecord, match=r'corpus\[1\]: missing field "text"'):
        neardup.compare(one, one, corpus=[{"id": "c", "text": "x"}, {"id": "d"}])
    # a and b are one record each, not lists.
    for a, b, wrong in ((None, one, "a: expected a dict with \"id\" and \"text\" or a str, not NoneType"),
                        (one, 42, "b: expected a dict with \"id\" and \"text\" or a str, not int")):
        with pytest.raises(TypeError) as raised:
            neardup.compare(a, b)
        assert str(raised.value) == wrong


def test_passages_are_the_commands(command, tmp_path):
    records = wire_story()
    pairs = neardup.pairs(records, threshold=0.05, passages=True, min_passage_words=6)
    assert pairs == run_command(command, ["pairs", "--threshold", "0.05", "--passages", "--min-passage-words", "6"],
                                records, tmp_path)
    assert any(p["passages"] for p in pairs)
    clusters = neardup.cluster(records, threshold=0.05, passages=True)
    assert clusters == run_command(command, ["cluster", "--threshold", "0.05", "--passages"], records, tmp_path)
    with pytest.raises(ValueError, match="near-copy level"):
        neardup.pairs(records, level="story", passages=True)


@pytest.mark.parametrize("given", [{"threshold": 0.9}, {"num_perm": 64}, {"mode": "leader"}])
def test_near_copy_settings_are_refused_at_the_story_level(given):
    key = next(iter(given))
    with pytest.raises(ValueError, match=f"{key} is a near-copy setting, unused at level='story'"):
        neardup.cluster(wire_story(), level="story", **given)


@pytest.mark.parametrize("given", [{"passage_gap": 0}, {"min_passage_words": 12}, {"boilerplate_docs": 5}])
def test_passage_settings_without_passages_are_refused(given):
    key = next(iter(given))
    for call in (neardup.cluster, neardup.pairs):
        with pytest.raises(ValueError, match=f"{key} tunes the passages of passages=True: it needs passages=True"):
            call(edited_copies(), **given)
        assert call(edited_copies(), passages=True, **given)


@pytest.mark.parametrize("given", [{"story_threshold": 0.9}, {"window": "1h"}, {"window": None},
                                   {"stats": "/no/such/file.stats"}])
def test_story_settings_are_refused_at_the_near_copy_level(given):
    key = next(iter(given))
    message = f"{key} is a story-level setting, unused at level='near-copy': it needs level='story'"
    gold = [{"a": "s0", "b": "s0-copy", "same_story": True}]
    calls = [neardup.cluster, neardup.pairs, neardup.dedup, lambda records, **kw: neardup.evaluate(records, gold, **kw)]
    for call in calls:
        if key == "story_threshold" and call is calls[3]:
            continue  # evaluate sweeps its thresholds: it takes no story_threshold
        with pytest.raises(ValueError, match=message):
            call(edited_copies(), **given)
    with pytest.raises(ValueError, match="it needs level='story'"):
        neardup.cluster(edited_copies(), level="copy", **given)
    # The defaults, and compare (its story verdict reads them), are fine.
    assert neardup.cluster(edited_copies(), window=neardup.DEFAULT_WINDOW, story_threshold=None, stats=None)
    if key == "window":
        assert neardup.compare(edited_copies()[0], edited_copies()[1], **given)["story"]


def test_progress_is_reported_stage_by_stage():
    records = wire_story() + edited_copies()
    calls: list[tuple] = []
    clusters = neardup.cluster(records, threshold=0.3, progress=lambda *call: calls.append(call))
    assert clusters == neardup.cluster(records, threshold=0.3)
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["read", "candidates", "verify", "cluster"]
    for stage in stages:
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert mine[0][0] == 0
        done, total = mine[-1]
        assert total is None or done == total
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)
    read_total = [total for s, _, total in calls if s == "read"][0]
    assert read_total > sum(len(r["text"]) for r in records)
    story = []
    neardup.dedup(records, level="story", progress=lambda *call: story.append(call[0]))
    assert "weigh" in story

    raised = []

    def stop(stage, done, total):
        raised.append(stage)
        raise KeyboardInterrupt("enough")

    with pytest.raises(KeyboardInterrupt, match="enough"):
        neardup.evaluate(records, gold_pairs(), progress=stop)
    assert raised == ["read"], "no call after the first exception"


@pytest.mark.parametrize("call", ["cluster", "dedup", "evaluate", "compare"])
def test_ctrl_c_stops_a_call_part_way(call):
    """SIGINT while a call runs: KeyboardInterrupt from the call, no later stage begun."""
    records = wire_story() + edited_copies()
    stages: list[str] = []
    interrupt = [True]

    def progress(stage, done, total):
        if stage not in stages:
            stages.append(stage)
        if interrupt[0] and stage == "read" and done == 0:
            interrupt[0] = False
            os.kill(os.getpid(), signal.SIGINT)
            # The call's waiting thread, the main one, sees Ctrl-C while this one sleeps.
            time.sleep(1)

    def run():
        calls = {
            "cluster": lambda: neardup.cluster(records, level="story", progress=progress),
            "dedup": lambda: neardup.dedup(records, progress=progress),
            "evaluate": lambda: neardup.evaluate(records, gold_pairs(), progress=progress),
            "compare": lambda: neardup.compare(records[0], records[1], corpus=records, progress=progress),
        }
        return calls[call]()

    with pytest.raises(KeyboardInterrupt):
        run()
    assert stages == ["read"]
    # Not interrupted, the same call runs to its end (and the module still works).
    stages.clear()
    assert run()
    assert stages == ["read"] if call == "compare" else len(stages) > 2


# --- index ---------------------------------------------------------------------------

def test_an_index_answers_as_the_command_does(command, tmp_path):
    records = edited_copies() + wire_story()
    with neardup.Index.create(tmp_path / "py") as index:
        answers = index.add(records)
    subprocess.run([command, "index", "create", "-q", str(tmp_path / "cli")], check=True)
    cli = run_command(command, ["index", "add", "--all-matches", str(tmp_path / "cli")], records, tmp_path)
    assert answers == cli
    assert [a["verdict"] for a in answers[:6]] == ["new", "duplicate"] * 3


def test_a_story_index_answers_rewrites(command, tmp_path):
    records = wire_story()
    with neardup.Index.create(tmp_path / "py", level="story", story_threshold=0.1) as index:
        answers = index.add(records)
        assert index.stats()["level"] == "story"
    subprocess.run([command, "index", "create", "-q", "--level", "story", "--story-threshold", "0.1",
                    str(tmp_path / "cli")], check=True)
    assert answers == run_command(command, ["index", "add", "--all-matches", str(tmp_path / "cli")],
                                  records, tmp_path)
    assert "rewrite" in [a["verdict"] for a in answers]


def test_one_record_in_one_answer_out_and_bad_ones_answered_in_place(tmp_path):
    first, copy = edited_copies()[:2]
    with neardup.Index.create(tmp_path / "idx") as index:
        assert index.add(first)["verdict"] == "new"
        answers = index.add([{"id": "no-text"}, copy, {"id": "empty", "text": ""}])
        assert [a["verdict"] for a in answers] == ["rejected", "duplicate", "rejected"]
        assert answers[0] == {"schema_version": 1, "id": "no-text", "verdict": "rejected",
                              "reason": 'missing field "text"', "index": 0}
        assert (answers[2]["index"], answers[2]["id"]) == (2, "empty")
        assert answers[1]["match"] == first["id"]
        assert len(index) == 2
        # A re-send of the same article is answered from the index, not added again.
        again = index.add(copy)
        assert again["verdict"] == "duplicate" and again["indexed"] is True
        assert len(index) == 2
        # Another text under an indexed id is refused.
        clash = index.add({"id": first["id"], "text": "Something else entirely, and long enough."})
        assert clash["verdict"] == "rejected"
        assert clash["reason"] == f'duplicate id "s0": the index {tmp_path / "idx"} has it with other text'
        # A record that is not a dict is answered in its place too; the rest is added.
        third = edited_copies()[4]
        answers = index.add(["a bare string has no id", third, 42])
        assert [a["verdict"] for a in answers] == ["rejected", "new", "rejected"]
        assert answers[0] == {"schema_version": 1, "id": None, "verdict": "rejected", "index": 0,
                              "reason": "expected a dict with 'id' and 'text', not str"}
        assert answers[2]["index"] == 2 and len(index) == 3
        with pytest.raises(TypeError, match="records must be a dict or an iterable of dicts, not str"):
            index.add("a bare string")


def test_a_value_json_cannot_hold_is_answered_in_place(tmp_path):
    """A record with a value JSON cannot hold is rejected in its place, naming the field;
    the records before and after it are answered and added."""
    good = edited_copies()
    bad = [
        ({"id": "nan", "text": "x y z w v u", "section": float("nan")}, 'field "section" is NaN, which JSON cannot hold'),
        ({"id": "inf", "text": "x y z w v u", "score": float("-inf")}, 'field "score" is -inf, which JSON cannot hold'),
        ({"id": "bytes", "text": b"scraped bytes"}, 'field "text" cannot be written as JSON: TypeError: Object of type bytes'),
        ({"id": "set", "text": "x y z w v u", "date": {1, 2}}, 'field "date" cannot be written as JSON: TypeError'),
        ({"id": "object", "text": "x y z w v u", "date": object()}, 'field "date" cannot be written as JSON: TypeError'),
        ({"id": "nested", "text": "x y z w v u", "tags": [float("nan")]}, 'field "tags" cannot be written as JSON: ValueError'),
        ({"id": "surrogate", "text": "bad \ud800"}, 'field "text" is a string that is not valid Unicode'),
        ({"id": "key", "text": "x y z w v u", "\ud800": 1}, "a field name that is not valid Unicode"),
        ({"id": 2**70, "text": "x y z w v u"}, f'field "id" is the integer {2**70}, out of range'),
    ]
    batch = [good[0], *(b for b, _ in bad[:5]), good[1], {"id": "no-text"}, *(b for b, _ in bad[5:]), good[2]]
    with neardup.Index.create(tmp_path / "idx") as index:
        for call in (index.add, index.query):  # query: the stored verdicts
            answers = call(batch)
            assert [a["verdict"] for a in answers] == ["new", *["rejected"] * 5, "duplicate", "rejected",
                                                       *["rejected"] * 4, "new"]
            rejected = [a for a in answers if a["verdict"] == "rejected" and a["id"] != "no-text"]
            for (record, reason), answer in zip(bad, rejected):
                assert answer["id"] == record["id"] and answer["index"] == batch.index(record)
                assert answer["reason"].startswith(reason), answer
            assert answers[7]["reason"] == 'missing field "text"' and answers[7]["index"] == 7
        assert len(index) == 3
        assert index.add(bad[0][0]) == {"schema_version": 1, "id": "nan", "verdict": "rejected", "index": 0,
                                        "reason": bad[0][1]}


def test_query_adds_nothing_and_remove_takes_out(tmp_path):
    records = edited_copies()
    with neardup.Index.create(tmp_path / "idx") as index:
        index.add(records[::2])
        answers = index.query(records)
        assert [(a["verdict"], a["indexed"]) for a in answers] == [("new", True), ("duplicate", False)] * 3
        assert len(index) == 3
        assert index.remove(["s0", "nobody"]) == {"s0": True, "nobody": False}
        assert len(index) == 2
        assert index.query(records[1])["verdict"] == "new"
        # One str is one id, not its characters.
        index.add({"id": "ab", "text": records[4]["text"]})
        assert index.remove("ab") == {"ab": True}
        assert index.remove(iter(["s2"])) == {"s2": True}
        for wrong in (b"s1", 5):
            with pytest.raises(TypeError, match="ids must be a str or an iterable of str"):
                index.remove(wrong)
        assert len(index) == 1
        assert index.clusters(min_size=1) and all(c["size"] == 1 for c in index.clusters(min_size=1))


def test_a_window_of_digits_alone_is_refused_as_the_command_refuses_it(tmp_path):
    # "72" was 72 seconds, kept in an index for good (QA pass 13).
    t = "The central bank raised its benchmark interest rate by a quarter point on Tuesday, the governor said."
    records = [{"id": "a", "text": t, "date": "2025-08-18T10:00:00Z"},
               {"id": "b", "text": t + " Markets fell.", "date": "2025-08-18T11:00:00Z"}]
    for wrong, says in (("72", "give a unit, e.g. '72h'"), (" 72 ", "give a unit"), ("1.5h", "whole number")):
        with pytest.raises(ValueError, match=says):
            neardup.pairs(records, level="story", window=wrong)
        with pytest.raises(ValueError, match=says):
            neardup.Index.create(tmp_path / "idx", level="story", window=wrong)
    assert not (tmp_path / "idx").exists()
    assert len(neardup.pairs(records, level="story", window="72h")) == 1
    assert len(neardup.pairs(records, level="story", window=72)) == 0, "an int is seconds"


def test_compact_removes_what_the_window_left_behind(tmp_path):
    day = 86_400
    t0 = 1_700_000_000
    records = [
        {"id": f"a{i}", "text": f"Story {i}: the council of town {i} voted on road {i} and bridge {i}.",
         "date": t0 + i * day}
        for i in range(10)
    ]
    with neardup.Index.create(tmp_path / "idx", window="3d") as index:
        index.add(records)
        assert index.stats()["expired"] == 6
        report = index.compact()
        assert (report["removed"], report["kept"]) == (6, 4)
        assert report["log_bytes"][1] < report["log_bytes"][0]
        assert len(index) == 4 and index.stats()["expired"] == 0
        assert index.compact()["removed"] == 0
    with neardup.Index(tmp_path / "idx", read_only=True) as view:
        assert len(view) == 4
        with pytest.raises(neardup.NeardupError, match="read"):
            view.compact()


def test_verdicts_say_which_dates_are_not_used(tmp_path):
    with neardup.Index.create(tmp_path / "idx", window="3d") as index:
        answers = index.add([
            {"id": "a", "text": "one two three four five six seven", "date": "2025-08-18T10:00:00+0000"},
            {"id": "b", "text": "eight nine ten eleven twelve thirteen", "date": "next tuesday"},
            {"id": "c", "text": "fourteen fifteen sixteen seventeen eighteen", "date": "2087-03-01"},
            # Beyond 64 bits: not refused, a date beyond any calendar, as the command reads it.
            {"id": "d", "text": "nineteen twenty twenty-one twenty-two", "date": 10**30},
        ])
        assert [a.get("date_ignored") for a in answers] == [
            None,
            {"value": "next tuesday", "reason": "unparsable"},
            {"value": "2087-03-01", "reason": "in_the_future"},
            {"value": str(10**30), "reason": "in_the_future"},
        ]
    text = edited_copies()[0]["text"]
    far = [{"id": "far", "text": text, "date": 10**30}, {"id": "near", "text": text + " Updated.", "date": "2025-08-01"}]
    assert neardup.cluster(far)[0]["representative"] == "near"


def test_ctrl_c_while_records_are_converted_stops_before_anything_is_added(tmp_path):
    # It was seen only once every record was converted and the first batch decided, a
    # second later on 57,000 records (QA pass 11).
    read = []

    class Record(Mapping):
        """A record that counts its reading, and presses Ctrl-C when it is the sixth."""

        def __init__(self, record: dict) -> None:
            self.record = record

        def __getitem__(self, key: str) -> Any:
            return self.record[key]

        def __iter__(self) -> Any:
            read.append(self.record["id"])
            if len(read) == 6:
                os.kill(os.getpid(), signal.SIGINT)
            return iter(self.record)

        def __len__(self) -> int:
            return len(self.record)

    records = [Record({"id": f"r{i}", "text": f"report {i} on road {i} and bridge {i}"}) for i in range(3000)]
    with neardup.Index.create(tmp_path / "idx") as index:
        with pytest.raises(neardup.Interrupted) as stopped:
            index.add(records)
        assert stopped.value.answers == []
        assert len(index) == 0
        assert len(read) <= 1024, "converting stops at the next check"
        assert len(index.add(records[:5])) == 5


def test_ctrl_c_stops_a_long_add_between_batches_with_the_answers_so_far(tmp_path):
    # Ten batches of 4,096: Ctrl-C comes once the first is written and is seen within a
    # tenth of a second, so the add stops batches before its end, even in a release build.
    records: list[Any] = [
        {"id": f"r{i}", "text": f"Report {i}: the council of town {i % 977} voted {i % 13} to {i % 7} on road {i % 31}."}
        for i in range(40_000)
    ]
    records[3] = 5  # answered in its place by the wrapper, outside the native call
    path = tmp_path / "idx"
    index = neardup.Index.create(path)
    before = sum(f.stat().st_size for f in path.iterdir())

    def interrupt_once_written() -> None:
        while sum(f.stat().st_size for f in path.iterdir()) == before:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_written, daemon=True).start()
    with pytest.raises(neardup.Interrupted) as stopped:
        index.add(records)
    assert isinstance(stopped.value, KeyboardInterrupt)
    first = stopped.value.answers
    assert 4096 <= len(first) < len(records), len(first)
    assert first[3]["verdict"] == "rejected" and first[3]["index"] == 3
    assert [a["id"] for a in first[4:]] == [r["id"] for r in records[4 : len(first)]]
    assert all(a["verdict"] == "new" for a in first[4:])
    assert len(index) == len(first) - 1, "what was answered was added, nothing more"
    index.close()
    # Durable, and what came after was not added: adding it again finds it new.
    with neardup.Index(path) as again:
        assert len(again) == len(first) - 1
        more = again.add(records[len(first) : len(first) + 100])
        assert [(a["verdict"], "indexed" in a) for a in more] == [("new", False)] * 100


def test_clusters_list_what_the_verdicts_joined(tmp_path):
    with neardup.Index.create(tmp_path / "idx") as index:
        index.add(edited_copies())
        assert [(c["cluster"], c["members"]) for c in index.clusters()] == [
            (f"s{i}", [f"s{i}", f"s{i}-copy"]) for i in range(3)
        ]


def test_one_writer_at_a_time_and_readers_alongside(tmp_path):
    path = tmp_path / "idx"
    writer = neardup.Index.create(path)
    writer.add(edited_copies()[0])
    with pytest.raises(neardup.NeardupError, match="open for writing by this process"):
        neardup.Index(path)
    reader = neardup.Index(path, read_only=True)
    assert reader.query(edited_copies()[1])["verdict"] == "duplicate"
    with pytest.raises(neardup.NeardupError):
        reader.add(edited_copies()[2])
    writer.close()
    with pytest.raises(neardup.NeardupError, match="closed"):
        writer.add(edited_copies()[2])
    with neardup.Index(path) as again:
        assert len(again) == 1


def test_a_read_only_view_follows_the_writer(command, tmp_path):
    path = tmp_path / "idx"
    records = {r["id"]: r for r in edited_copies()}

    def copy_of(name):
        return {"id": f"q-{name}", "text": records[name]["text"]}

    def seen(view):
        return [(r["verdict"], r["match"]) for r in (view.query(copy_of(n)) for n in ("s0", "s1", "s2"))]

    writer = neardup.Index.create(path)
    writer.add([records["s0"], records["s1"]])
    view = neardup.Index(path, read_only=True)
    assert len(view) == 2
    assert view.query(copy_of("s2"))["verdict"] == "new"
    # Added by a writer in this process: seen by the view's next call.
    writer.add(records["s2"])
    assert len(view) == 3
    assert view.query(copy_of("s2"))["match"] == "s2"
    # Removed (a new generation): no longer matched.
    assert writer.remove(["s0"]) == {"s0": True}
    assert view.query(copy_of("s0"))["verdict"] == "new"
    assert view.stats()["generation"] == 1
    writer.close()
    # Written by another process: the command adds one and removes another.
    added = tmp_path / "again.jsonl"
    added.write_text(json.dumps(records["s0"]) + "\n")
    subprocess.run([command, "index", "add", "-q", str(path), str(added)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([command, "index", "remove", "-q", str(path), "s1"], check=True, stdout=subprocess.DEVNULL)
    assert len(view) == 2
    assert seen(view) == [("duplicate", "s0"), ("new", None), ("duplicate", "s2")]
    with neardup.Index(path, read_only=True) as fresh:
        assert (len(fresh), seen(fresh)) == (len(view), seen(view))
        assert view.clusters() == fresh.clusters()


def in_child(body: Callable[[], Any], timeout: float = 60) -> str:
    """Runs ``body`` in a child forked from this process (as a multiprocessing worker is
    started on Linux) and returns what it returned, as its repr, or the exception it
    raised, as ``"Name: message"``. Fails if the child does not finish in ``timeout``."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process
        pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                out = repr(body())
            except BaseException as e:  # noqa: BLE001 -- everything goes back to the parent
                out = f"{type(e).__name__}: {e}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail(f"the forked child did not finish in {timeout} s")
        time.sleep(0.02)
    with os.fdopen(r) as f:
        return f.read()


def test_an_index_is_not_used_across_a_fork(tmp_path):
    """A forked child inherits the Index, and with it the writer's lock: every call
    raises there, and nothing it does reaches the index or lets go of the lock."""
    path = tmp_path / "idx"
    records = edited_copies()
    index = neardup.Index.create(path)
    index.add(records[0])

    def child() -> list[str]:
        said = []
        for call in (lambda: index.add(records[2]), lambda: index.query(records[1]), lambda: len(index),
                     index.stats, index.clusters, lambda: index.remove("s0")):
            try:
                call()
                said.append("answered")
            except neardup.NeardupError as e:
                said.append(str(e))
        index.close()  # lets go of the child's copy only
        try:
            neardup.Index(path)
            said.append("opened for writing")
        except neardup.NeardupError as e:
            said.append(str(e))
        return said

    said = eval(in_child(child))
    assert len(said) == 7
    assert all(f"was opened by process {os.getpid()}" in s and "neardup.Index(path)" in s and "  " not in s for s in said[:6]), said
    assert "open for writing by another process" in said[6], said[6]
    assert index.add(records[4])["verdict"] == "new"
    assert len(index) == 2
    index.close()
    with neardup.Index(path) as again:  # not damaged
        assert [c["members"] for c in again.clusters(min_size=1)] == [["s0"], ["s2"]]


def test_a_forked_child_lets_go_of_the_lock(tmp_path):
    """A child forked while an index is open (a pool of workers) does not keep its lock:
    the opener closes the index and opens it again while the child still runs."""
    path = tmp_path / "idx"
    index = neardup.Index.create(path)
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # until the parent is done
        os._exit(0)
    os.close(r)
    try:
        index.close()
        with neardup.Index(path) as again:
            assert again.add(edited_copies()[0])["verdict"] == "new"
    finally:
        os.close(w)
        os.waitpid(pid, 0)


def test_calls_work_in_a_child_forked_after_calls_in_the_parent(tmp_path):
    """Worker threads do not survive a fork: a child forked after the parent ran calls
    (a multiprocessing Pool after a warm-up) runs its own, with the parent's results."""
    records = wire_story() + edited_copies()
    clusters = neardup.cluster(records, threshold=0.3)
    with neardup.Index.create(tmp_path / "parent") as index:
        verdicts = [a["verdict"] for a in index.add(records)]

    def child() -> tuple:
        with neardup.Index.create(tmp_path / "child") as index:
            added = [a["verdict"] for a in index.add(records)]
        return neardup.cluster(records, threshold=0.3) == clusters, added == verdicts

    assert in_child(child, timeout=30) == "(True, True)"


def test_index_settings_are_checked(tmp_path):
    with pytest.raises(neardup.NeardupError, match="not a neardup index"):
        neardup.Index(tmp_path)
    # A file that is not there, as the batch calls say of one.
    with pytest.raises(FileNotFoundError, match="no-such-index"):
        neardup.Index(tmp_path / "no-such-index")
    assert "--format jsonl" in neardup.Index.stats.__doc__
    with pytest.raises(ValueError, match="story_threshold"):
        neardup.Index.create(tmp_path / "a", story_threshold=0.2)
    with pytest.raises(ValueError, match="level='story'"):
        neardup.Index.create(tmp_path / "b", stats=tmp_path / "x.stats")
    assert neardup.Index.create(tmp_path / "c", level="story").stats()["window_seconds"] == 72 * 3600
    assert neardup.Index.create(tmp_path / "d", level="story", window=None).stats()["window_seconds"] is None


def log_frames(log: bytes) -> list[tuple[int, int]]:
    """Each frame of an article log as (offset, bytes): after the 24-byte header, a
    little-endian u32 payload length, a CRC-32C, the payload (as tests/feed.rs reads it)."""
    frames, at = [], 24
    while at + 8 <= len(log):
        frames.append((at, 8 + int.from_bytes(log[at:at + 4], "little")))
        at += frames[-1][1]
    return frames


def damage_article(path: Path, k: int, records: list[dict]) -> tuple[bytes, dict]:
    """Flips a byte in the middle of the k-th article of the index at ``path``'s first
    log; returns the damaged log and the range the repair must report."""
    log = path / "articles.0.log"
    good = log.read_bytes()
    frames = log_frames(good)
    assert len(frames) == len(records)
    offset, length = frames[k]
    bad = bytearray(good)
    bad[offset + length // 2] ^= 0xFF
    log.write_bytes(bytes(bad))
    return bytes(bad), {"offset": offset, "bytes": length}


def test_repair_keeps_every_intact_article_as_the_command_does(command, tmp_path):
    records = edited_copies()
    built = tmp_path / "built"
    with neardup.Index.create(built) as index:
        index.add(records)
    for name in ("py", "cli"):
        shutil.copytree(built, tmp_path / name, ignore=shutil.ignore_patterns("lock"))
        # The third article, s1: s1-copy, its duplicate, loses its match.
        bad, damaged = damage_article(tmp_path / name, 2, records)
    py = tmp_path / "py"
    with pytest.raises(neardup.NeardupError, match=r"damaged at byte .*neardup\.Index\.repair\("):
        neardup.Index(py)
    report = neardup.Index.repair(py)
    out = subprocess.run([command, "index", "repair", "-q", "--format", "jsonl", str(tmp_path / "cli")],
                         check=True, capture_output=True, text=True)
    cli = json.loads(out.stdout)
    for key in ("log", "kept_aside"):  # paths in the other directory
        cli[key] = cli[key].replace(str(tmp_path / "cli"), str(py))
    assert report == cli
    assert (report["outcome"], report["kept"], report["damaged"]) == ("repaired", 5, [damaged])
    assert (report["header_damaged"], report["unfinished_write"]) == (False, None)
    assert (report["generation"], report["repaired_generation"]) == (0, 1)
    assert report["kept_aside"] == str(py / "articles.0.log.damaged")
    assert (py / "articles.0.log.damaged").read_bytes() == bad
    assert report["verdicts_changed"] == ["s1-copy"]
    with neardup.Index(py) as index:
        assert len(index) == 5
        assert index.query(records[3])["verdict"] == "new"
        again = index.add(records)
        assert [a.get("indexed", False) for a in again] == [True, True, False, True, True, True]
    # Whole now: left as it is.
    assert neardup.Index.repair(py)["outcome"] == "nothing_to_repair"


def test_a_damaged_log_header_names_the_package_repair(tmp_path):
    # It named the command, which the package does not install (QA pass 12).
    path = tmp_path / "idx"
    with neardup.Index.create(path) as index:
        index.add(edited_copies())
    log = path / "articles.0.log"
    bad = bytearray(log.read_bytes())
    bad[2] ^= 1
    log.write_bytes(bytes(bad))
    with pytest.raises(neardup.NeardupError, match=r"header is damaged.*neardup\.Index\.repair\(") as raised:
        neardup.Index(path)
    assert "neardup index repair" not in str(raised.value)
    assert neardup.Index.repair(path)["kept"] == 6


def test_repair_takes_the_lock_and_may_discard_the_damaged_log(tmp_path):
    path = tmp_path / "idx"
    records = edited_copies()
    with neardup.Index.create(path) as index:
        index.add(records)
        with pytest.raises(neardup.NeardupError, match="open for writing by this process"):
            neardup.Index.repair(path)
    damage_article(path, 0, records)
    with pytest.raises(TypeError, match="discard_damaged must be True or False"):
        neardup.Index.repair(path, discard_damaged="yes")
    report = neardup.Index.repair(str(path), discard_damaged=True)
    assert (report["kept"], report["kept_aside"], report["verdicts_changed"]) == (5, None, ["s0-copy"])
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("articles.")) == ["articles.1.log"]
    with pytest.raises(FileNotFoundError, match="nothing"):
        neardup.Index.repair(tmp_path / "nothing")


def test_every_answered_article_survives_a_kill(tmp_path):
    """A process adding articles one at a time is killed with SIGKILL; every article it
    was answered for is in the index when it is opened again."""
    path = tmp_path / "idx"
    neardup.Index.create(path).close()
    script = textwrap.dedent(f"""
        import sys, neardup
        index = neardup.Index({str(path)!r})
        for i in range(100000):
            text = f"Article number {{i}} says the market moved {{i % 97}} points on news of {{i * 7919 % 10007}}."
            index.add({{"id": f"a{{i}}", "text": text}})
            print(f"a{{i}}", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    answered = []
    assert child.stdout is not None
    for line in child.stdout:
        answered.append(line.strip())
        if len(answered) == 300:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    answered += [line.strip() for line in child.stdout.read().splitlines()]
    time.sleep(0.1)
    with neardup.Index(path) as index:
        found = index.query([{"id": i, "text": "x"} for i in answered])
        assert len(index) >= len(answered)
    # Each answered id is indexed (its text differs from the query's, hence rejected as
    # a clash with the stored one).
    assert all(a["verdict"] == "rejected" and "duplicate id" in a["reason"] for a in found), found[:3]
