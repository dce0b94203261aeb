#!/usr/bin/env python3
"""neardup on Apache Spark: near-duplicate pairs and clusters of inputs too big for one machine.

The work is neardup's own, split the way LSH splits:

1. map     each partition of the input's lines is piped through `neardup sketch -` (the same
           similarity flags on every worker): one record per document with its LSH band keys,
           signature, exact shingle set and metadata;
2. shuffle documents sharing a band key are candidate pairs (a bucket larger than the bucket
           cap is paired in a window in id order, and more than the cap identical shingle
           sets as a star around the first in id order, as `neardup pairs` does);
3. verify  each candidate pair of records piped through `neardup verify`: estimated and exact
           Jaccard, containments, kept at or above the threshold;
4. cluster the connected components of the verified pairs (found on the driver by
           union-find over the pairs streamed back: memory grows with the clustered
           documents, not the input), each partition's with its pairs and its members'
           records piped through `neardup link --mode` (connected or leader: both only group
           along verified pairs, so components cluster apart; with `--bucket-cap`, so that in
           leader mode `link` finds the copy groups in the records' sets and moves each as
           one, as `neardup cluster` does); numbered on the driver.

With the same flags `pairs/` and `clusters.jsonl` are, byte for byte, the output of
`neardup pairs` and `neardup cluster` on the whole input (tests/spark.rs checks both).

With --level story, the story level (copies, updates and rewrites of one news story):

1. count   each partition's corpus statistics (`neardup stats count -`), summed by a tree of
           `neardup stats merge` into the whole input's, written to the output as
           `corpus.stats` (`corpus.stats.base64` on a remote file system) and
           shipped to every worker;
2. map     each partition piped through `neardup sketch --level story --stats corpus.stats -`:
           the band keys of each document's IDF-weighted word signature, its signature, story
           features and shingle set;
3. shuffle documents sharing a band key are candidate pairs (buckets over neardup's story
           cap of 100 paired in id-order windows);
4. verify  each candidate pair of records piped through `neardup verify`: the batch's
           signature floor, time window, score components and model;
5. link    the connected components of the same-story pairs, each partition's with every
           judged pair inside them and their members' sketch records, piped through
           `neardup link` (majority linkage, representative, cohesion: linkage only merges
           along same-story pairs, so components link apart); numbered on the driver.

The same-story pairs are exactly those of `neardup pairs --level story`, and
`clusters.jsonl` is byte for byte the output of `neardup cluster --level story`
(tests/spark.rs). Output: `pairs/` (the records of `pairs --level story`),
`clusters.jsonl` (the records of `cluster --level story`: members with their metadata, the
pairs inside), `corpus.stats` and `summary.json`; --dedup as above. Every input is read
twice (once to count, once to sketch).

Output directory: `pairs/` (Spark part files, the records of `neardup pairs`, sorted by
id), `clusters.jsonl` (the records of `neardup cluster`) and `summary.json`; with --dedup
also `kept/` (the input lines minus the near-duplicates, byte for byte, in input order
within each part) and `dropped.jsonl` ({"id", "kept", "cluster"}), the records `neardup
dedup` keeps and drops.

Input: JSON Lines, plain, gzip (Spark's reader decompresses .gz) or zstd (.zst or .zstd,
decompressed in Python: needs the zstandard module, and a truncated or damaged stream
fails the job naming the file); a gzip or zstd file is read whole by one task, so the
line numbers in neardup's messages are the file's. Bad records (malformed JSON, missing
text, a repeated id) fail the job with neardup's message; in a plain file split into
partitions, its line number counts lines of the failing task's partition, not of the file.
With --input-format text, each input is a directory of text documents, read as neardup
reads one: its .txt files (also .txt.gz and .txt.zst) at any depth, each one document
whose id is its path relative to the directory (Hadoop's listing skips names starting
with '.' or '_', which neardup does not); each file is read whole by one task, and one
that is not UTF-8 fails the job naming it. --dedup's kept/ then holds {id, text} records.

    python3 scripts/spark/neardup_spark.py news/*.jsonl.gz --output out --threshold 0.8
    spark-submit --master spark://host:7077 scripts/spark/neardup_spark.py hdfs:///news \\
        --output hdfs:///out --neardup /opt/neardup/bin/neardup

`--neardup` must name the binary on every worker (same version everywhere: the band keys and
shingle sets depend on it).
"""

import argparse
import base64
import json
import operator
import os
import shlex
import shutil
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Near-duplicate pairs and clusters with neardup on Apache Spark.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("inputs", nargs="+",
                   help="JSON Lines files or directories of them (any Hadoop path); with "
                        "--input-format text, directories of .txt documents")
    p.add_argument("--output", required=True, help="output directory (must not exist)")
    p.add_argument("--neardup", default=shutil.which("neardup") or "neardup",
                   help="the neardup binary on the workers (default: neardup on PATH)")
    p.add_argument("--master", default=None,
                   help="Spark master (default: spark-submit's; local[*] when run with python)")
    p.add_argument("--driver-memory", default=None,
                   help="heap of the driver's JVM when run with python (e.g. 4g; Spark's default "
                        "is 1g), which with a local master also runs the tasks")
    p.add_argument("--partitions", type=int, default=None,
                   help="minimum partitions of each input (default: Spark's; at the story "
                        "level one per 4 MiB of a local input)")
    p.add_argument("--threshold", type=float, default=0.5, help="lowest exact Jaccard (default 0.5)")
    p.add_argument("--shingle", default="words:5")
    p.add_argument("--num-perm", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bands", type=int, default=None)
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--bucket-cap", type=int, default=1000)
    p.add_argument("--input-format", choices=["jsonl", "text"], default="jsonl",
                   help="jsonl (default): every file of the inputs holds JSON Lines; text: "
                        "each input is a directory searched, as neardup searches one, for "
                        ".txt files (also .txt.gz, .txt.zst), each one document whose id is "
                        "its path relative to the directory (Hadoop's listing skips names "
                        "starting with '.' or '_', which neardup does not)")
    p.add_argument("--id-field", default="id")
    p.add_argument("--text-field", default="text")
    p.add_argument("--date-field", default="date",
                   help="field holding the date (for --dedup's earliest representative)")
    p.add_argument("--mode", choices=["connected", "leader"], default="connected",
                   help="near-copy level: connected components (default) or leader clusters, "
                        "as neardup cluster --mode")
    p.add_argument("--dedup", action="store_true",
                   help="also write kept/ (the input records minus near-duplicates, one kept "
                        "per cluster: the earliest, then the longest, then the smallest id, as "
                        "neardup dedup keeps) and dropped.jsonl ({id, kept, cluster})")
    p.add_argument("--level", choices=["near-copy", "story"], default="near-copy",
                   help="near-copy (default): shared text, exact Jaccard >= --threshold; story: "
                        "copies, updates and rewrites of one news story (neardup --level story)")
    p.add_argument("--window", default="72h",
                   help="story level: dated articles further apart are never one story "
                        "(default 72h; 'none': any distance)")
    p.add_argument("--story-candidates", type=float, default=0.2,
                   help="story level: candidate threshold (as neardup's --story-candidates)")
    p.add_argument("--story-threshold", type=float, default=None,
                   help="story level: lowest probability of one story (default: the model's)")
    p.add_argument("--worker-threads", type=int, default=1,
                   help="threads of each neardup task (default 1: Spark runs tasks in parallel)")
    args = p.parse_args(argv)
    if not 0.0 < args.threshold <= 1.0:
        p.error("--threshold must be in (0, 1]")
    if args.bucket_cap < 2:
        p.error("--bucket-cap must be at least 2")
    if args.level == "story":
        # The near-copy level's banding and threshold; the story level's are neardup's own.
        ignored = [flag for flag, value, default in (
            ("--threshold", args.threshold, 0.5), ("--bands", args.bands, None),
            ("--rows", args.rows, None), ("--bucket-cap", args.bucket_cap, 1000),
            ("--num-perm", args.num_perm, 128), ("--mode", args.mode, "connected"))
            if value != default]
        if ignored:
            p.error("%s: the near-copy level's; the story level decides with "
                    "--story-threshold, --story-candidates and --window" % ", ".join(ignored))
    if args.window.strip().isdigit():
        # As neardup's --window: a bare number was once read as seconds, not the hours meant.
        p.error("--window %s: give a unit, e.g. %sh (s, m, h, d or w; 'none': no window)"
                % (args.window, args.window.strip()))
    for path in args.inputs:
        if "," in path:
            p.error("%r: Spark's file reader splits paths at commas; rename or link it" % path)
    return args


def input_flags(args):
    return ["--progress", "never", "--threads", str(args.worker_threads),
            "--id-field", args.id_field, "--text-field", args.text_field,
            "--date-field", args.date_field]


def sketch_command(args):
    """The neardup command every partition is piped through."""
    cmd = [args.neardup, "sketch", "-",
           "--shingle", args.shingle, "--num-perm", str(args.num_perm),
           "--seed", str(args.seed), "--threshold", repr(args.threshold)] + input_flags(args)
    if args.bands is not None:
        cmd += ["--bands", str(args.bands)]
    if args.rows is not None:
        cmd += ["--rows", str(args.rows)]
    return cmd


ZSTD_SUFFIXES = (".zst", ".zstd")


def input_lines(sc, path, partitions):
    """The lines of an input: Spark's text reader (which splits plain files and
    decompresses gzip), or, for zstd files (a file or a glob ending in .zst or .zstd),
    each file read whole by one task and decompressed in Python."""
    if path.endswith(ZSTD_SUFFIXES):
        return sc.binaryFiles(path).flatMap(lambda kv: zstd_lines(kv[0], kv[1]))
    return sc.textFile(path, minPartitions=partitions)


def read_inputs(sc, args, partitions_of):
    """Every input's lines (JSON Lines; text documents become {id, text} records), one RDD."""
    if args.input_format == "text":
        return sc.union([text_documents(sc, path, args) for path in args.inputs])
    return sc.union([input_lines(sc, path, partitions_of(path)) for path in args.inputs])


TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.zst")
UTF8_BOM = b"\xef\xbb\xbf"


def text_documents(sc, path, args):
    """The .txt documents of the directory `path` (searched recursively, on any Hadoop file
    system) as JSON lines {id, text}: the id is the file's path relative to the directory,
    as neardup names the documents of a directory; gzip and zstd files are decompressed, a
    leading byte-order mark dropped, and a file that is not UTF-8 fails the job naming it."""
    jvm = sc._jvm
    conf = sc._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(conf)
    if not fs.exists(hadoop_path) or not fs.getFileStatus(hadoop_path).isDirectory():
        raise SystemExit("neardup_spark: error: %s: --input-format text reads directories of "
                         ".txt documents; this is not a directory" % path)
    prefix = fs.makeQualified(hadoop_path).toString().rstrip("/") + "/"
    conf.set("mapreduce.input.fileinputformat.input.dir.recursive", "true")
    id_field, text_field = args.id_field, args.text_field

    def document(kv):
        name, data = kv
        if not name.lower().endswith(TEXT_SUFFIXES):
            return []  # a directory holds .txt documents; other files are not inputs
        if name.lower().endswith(".gz"):
            import gzip
            try:
                data = gzip.decompress(data)
            except (EOFError, OSError) as e:
                raise RuntimeError("%s: not a gzip stream, or a damaged or truncated one: %s"
                                   % (name, e))
        elif name.lower().endswith(".zst"):
            data = zstd_bytes(name, data)
        if data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM):]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RuntimeError("%s: invalid UTF-8 at byte %d: a text document must be UTF-8 "
                               "(`iconv -f windows-1252 -t utf-8 FILE` converts a Latin-1 or "
                               "Windows-1252 one)" % (name, e.start))
        doc_id = name[len(prefix):] if name.startswith(prefix) else name
        return [json.dumps({id_field: doc_id, text_field: text}, ensure_ascii=False)]

    return sc.binaryFiles(path).flatMap(document)


def zstd_bytes(path, data):
    """The bytes of every frame of a zstd file (a truncated or damaged stream is an error
    naming the file, never a silent end)."""
    try:
        import zstandard
    except ImportError:
        raise RuntimeError("%s: reading zstd inputs needs the Python module zstandard on the "
                           "driver and every worker (pip install zstandard)" % path)
    chunks = []
    while data:
        frame = zstandard.ZstdDecompressor().decompressobj()
        try:
            chunks.append(frame.decompress(data))
        except zstandard.ZstdError as e:
            raise RuntimeError("%s: not a zstd stream, or a damaged one: %s" % (path, e))
        if not frame.eof:
            raise RuntimeError("%s: truncated zstd stream (its last frame does not end)" % path)
        data = frame.unused_data
    return b"".join(chunks)


def zstd_lines(path, data):
    """The lines of a zstd file's bytes, split as Spark splits text: at \\n, \\r\\n and
    \\r. Bytes that are not UTF-8 pass through, for neardup to report by line."""
    text = zstd_bytes(path, data).decode("utf-8", "surrogateescape")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the end of the last line, not a line
    return lines


def refuse_repeated_ids(ids):
    """Stops the job when an id occurs twice across the input (neardup sees only its part)."""
    repeated = (ids.map(lambda i: (i, 1)).reduceByKey(lambda x, y: x + y)
                .filter(lambda kv: kv[1] > 1).keys().take(5))
    if repeated:
        raise SystemExit("neardup_spark: error: ids repeated across the input: %s" %
                         ", ".join(repr(i) for i in repeated))


def bucket_pairs(members, cap):
    """Candidate pairs of one LSH bucket, (smaller id, larger id)."""
    ids = sorted(members)
    out = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:] if len(ids) <= cap else ids[i + 1:i + cap]:
            out.append((a, b))
    return out


class UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, x):
        root = x
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def run(spark, args):
    if args.level == "story":
        return run_story(spark, args)
    from pyspark import StorageLevel

    # Kept for several actions; spilled rather than recomputed (recomputing the sketches
    # would run neardup again) when executors run short of memory.
    keep = StorageLevel.MEMORY_AND_DISK
    sc = spark.sparkContext
    lines = read_inputs(sc, args, lambda path: args.partitions)
    sketch = sketch_command(args)
    sketches = (lines.mapPartitions(lambda part: piped(sketch, part))
                .map(lambda line: (json.loads(line), line))
                .map(lambda r: (r[0]["id"], r[0]["bands"], r[1], r[0]["set"]))
                .persist(keep))
    documents = sketches.count()
    refuse_repeated_ids(sketches.map(lambda r: r[0]))

    cap = args.bucket_cap
    # As neardup: more than `cap` documents with the same shingle set band only the first
    # in id order, and every other is paired with it.
    copy_groups = (sketches.map(lambda r: (r[3], r[0]))
                   .groupByKey()
                   .mapValues(sorted)
                   .values()
                   .filter(lambda ids: len(ids) > cap)
                   .persist(keep))
    copy_group_count = copy_groups.count()
    starred = copy_groups.flatMap(lambda ids: [(d, None) for d in ids[1:]])
    stars = copy_groups.flatMap(lambda ids: [(ids[0], d) for d in ids[1:]])
    banded = sketches.map(lambda r: (r[0], r)).subtractByKey(starred).values()
    buckets = (banded.flatMap(lambda r: [((band, key), r[0]) for band, key in enumerate(r[1])])
               .groupByKey()
               .mapValues(list)
               .filter(lambda kv: len(kv[1]) > 1)
               .persist(keep))
    oversized = buckets.filter(lambda kv: len(kv[1]) > cap).count()
    candidates = buckets.flatMap(lambda kv: bucket_pairs(kv[1], cap)).union(stars).distinct()

    records = sketches.map(lambda r: (r[0], r[2]))
    candidate_lines = paired_records(candidates, records).persist(keep)
    candidate_pairs = candidate_lines.count()
    verify = [args.neardup, "verify", "-", "-q", "--threshold", repr(args.threshold),
              "--num-perm", str(args.num_perm)]
    verified = (candidate_lines.mapPartitions(lambda part: piped(verify, part))
                .map(lambda line: (json.loads(line), line))
                .map(lambda r: (r[0]["a"], r[0]["b"], r[1], r[0]))
                .sortBy(lambda p: (p[0], p[1]))
                .persist(keep))
    (verified.map(lambda p: record_line(p[3], PAIR_FIELDS))
     .saveAsTextFile(os.path.join(args.output, "pairs")))

    # The cap too: in leader mode `link` moves a copy group (as found above) as one.
    link = [args.neardup, "link", "-", "-q", "--mode", args.mode,
            "--bucket-cap", str(args.bucket_cap)]
    clusters = linked_clusters(sc, args.output, link, verified, records)
    summary = {"documents": documents, "candidate_pairs": candidate_pairs,
               "verified_pairs": verified.count(), "clusters": len(clusters),
               "clustered_documents": sum(len(c[0]) for c in clusters),
               "oversized_buckets": oversized, "copy_groups": copy_group_count,
               "threshold": args.threshold}
    if args.dedup:
        summary["dropped"] = dedup(sc, args, lines, clusters)
    write_small(sc, args.output, "summary.json", [json.dumps(summary, indent=1)])
    return summary


# The fields of a `neardup pairs` record (the record `verify` writes adds the unrounded
# score the linkage needs).
PAIR_FIELDS = ("schema_version", "a", "b", "estimated_jaccard", "jaccard",
               "containment_a_in_b", "containment_b_in_a")
STORY_PAIR_FIELDS = ("schema_version", "level", "a", "b", "kind", "score", "components")


def record_line(record, fields):
    return json.dumps({k: record[k] for k in fields}, separators=(",", ":"),
                      ensure_ascii=False)


def paired_records(pairs, records):
    """`[record a, record b]` lines of the (a, b) `pairs`, from `records` (id, line)."""
    return (pairs.join(records)                             # a -> (b, record a)
            .map(lambda kv: (kv[1][0], kv[1][1]))
            .join(records)                                  # b -> (record a, record b)
            .map(lambda kv: "[%s,%s]" % (kv[1][0], kv[1][1])))


def linked_clusters(sc, output, link, pairs, records, joins=None):
    """Cluster records of `neardup link` (the command `link`), numbered as one run numbers
    them: `pairs` holds (a, b, line, record) of every pair verify wrote, `records` (id,
    sketch line) of every document, `joins(record)` says whether a pair joins its two
    documents (default: every pair does). The connected components of the joining pairs
    are found on the driver; each partition's components go, with every pair inside them
    and their members' sketch records, through `link` (components cluster apart).
    Returns [(members, representative)] and writes clusters.jsonl."""
    joining = pairs if joins is None else pairs.filter(lambda p: joins(p[3]))
    components = UnionFind()
    for a, b in joining.map(lambda p: (p[0], p[1])).toLocalIterator():
        components.union(a, b)
    component = sc.broadcast({doc: components.find(doc) for doc in list(components.parent)})

    def inside(p):
        root = component.value.get(p[0])
        return [(root, (0, p[2]))] if root is not None and root == component.value.get(p[1]) \
            else []

    linked = (pairs.flatMap(inside)
              .union(records.filter(lambda r: r[0] in component.value)
                     .map(lambda r: (component.value[r[0]], (1, r[1]))))
              .groupByKey(numPartitions=sc.defaultParallelism)
              .mapPartitions(lambda part: link_components(link, part))
              .map(lambda line: (json.loads(line), line))
              .collect())
    # Largest first, then by representative, as one run orders them.
    linked.sort(key=lambda c: (-c[0]["size"], c[0]["representative"]))
    write_small(sc, output, "clusters.jsonl", [
        line.replace('"cluster":%d,' % record["cluster"], '"cluster":%d,' % n, 1)
        for n, (record, line) in enumerate(linked, 1)])
    return [([m["id"] for m in record["members"]], record["representative"])
            for record, _ in linked]


def story_banding(neardup, args):
    """neardup's story-level bucket cap (a larger LSH bucket pairs its members in id-order
    windows of this many) and the signature estimate a bucket pair needs to be scored, as
    `neardup params --level story` gives them for the job's --story-candidates: asked, not
    repeated here, so the two cannot drift apart."""
    import subprocess

    done = subprocess.run([neardup, "params", "--level", "story", "--threshold",
                           repr(args.story_candidates), "--format", "json", "--no-plots",
                           "-q"], check=True, capture_output=True)
    record = json.loads(done.stdout)
    return record["bucket_cap"], record["estimate_floor"]


# A story sketch is about six times the input it comes from (features, shingle set and
# signature of every document): partitions of 4 MiB of input keep a task's share of the
# persisted sketches small enough for Spark's default 1 GB heap in a local run (at
# 200,000 articles, 11 partitions ran out of it; 80 did not, and were faster).
STORY_SPLIT_BYTES = 4 << 20


def story_partitions(path, asked):
    """Partitions of an input at the story level: --partitions when given, else one per
    STORY_SPLIT_BYTES of a local file or directory (Spark's default for other paths;
    gzip files are never split)."""
    if asked is not None:
        return asked
    if os.path.isfile(path):
        size = os.path.getsize(path)
    elif os.path.isdir(path):
        size = sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path)
                   if os.path.isfile(os.path.join(path, name)))
    else:
        return None
    return max(1, -(-size // STORY_SPLIT_BYTES))


def piped(cmd, lines):
    """Runs `cmd` with `lines` (str, without newlines) on its standard input, from a thread,
    and yields its standard output's lines; a failure raises with neardup's message."""
    import subprocess
    import tempfile
    import threading

    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
    failed = []

    def feed():
        try:
            for line in lines:
                proc.stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
        except BrokenPipeError:
            pass
        except BaseException as e:  # an upstream task's failure, raised below
            failed.append(e)
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    for line in proc.stdout:
        yield line.decode("utf-8").rstrip("\n")
    writer.join()
    code = proc.wait()
    if failed:
        raise failed[0]
    if code != 0:
        errors.seek(0)
        raise RuntimeError("%s exited with %d: %s" % (
            " ".join(shlex.quote(c) for c in cmd), code,
            errors.read().decode("utf-8", "replace").strip()))


def counted_statistics(neardup, flags, lines):
    """The statistics file (bytes) of one partition's lines."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "part.stats")
        for _ in piped([neardup, "stats", "count", "-", "-q", "--strict", "-o", path] + flags,
                       lines):
            pass
        with open(path, "rb") as f:
            return f.read()


def merged_statistics(neardup, x, y):
    """The statistics file (bytes) of two parts' statistics files, summed."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ("x.stats", "y.stats", "merged.stats")]
        for path, data in zip(paths, (x, y)):
            with open(path, "wb") as f:
                f.write(data)
        subprocess.run([neardup, "stats", "merge", "-q", paths[0], paths[1], "-o", paths[2]],
                       check=True, capture_output=True)
        with open(paths[2], "rb") as f:
            return f.read()


def story_flags(args):
    return (["--window", args.window, "--story-candidates", repr(args.story_candidates)]
            + story_threshold_flag(args))


def story_threshold_flag(args):
    return [] if args.story_threshold is None else ["--story-threshold",
                                                    repr(args.story_threshold)]


def window_seconds(window):
    """Seconds of a --window such as 72h, 3d, 90m, 2w or 3600s; None for 'none' or
    a form this script does not read (neardup verify still applies the window)."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", window)
    if not match:
        return None
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return int(match.group(1)) * unit


def story_bucket_pairs(members, cap, floor, window):
    """Candidate pairs (smaller id, larger id) of one story LSH bucket whose members are
    (id, low bytes of the signature slots, date): the pairs `bucket_pairs` makes, only
    those neardup verify might score (see run_story)."""
    by_id = {member[0]: member for member in members}
    out = []
    for a, b in bucket_pairs(by_id, cap):
        (_, digest_a, date_a), (_, digest_b, date_b) = by_id[a], by_id[b]
        if window is not None and date_a is not None and date_b is not None \
                and abs(date_a - date_b) > window:
            continue
        if sum(map(operator.eq, digest_a, digest_b)) / len(digest_a) >= floor:
            out.append((a, b))
    return out


def link_components(link, components):
    """The cluster records `link` (neardup link) writes for `components`: (component,
    [(0, pair line) or (1, member sketch record line)])."""
    import tempfile

    pairs = []
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", errors="surrogateescape",
                                     suffix=".jsonl") as members:
        for _, lines in components:
            for kind, line in lines:
                if kind == 0:
                    pairs.append(line)
                else:
                    members.write(line + "\n")
        members.flush()
        yield from piped(link + ["--members", members.name], pairs)


def run_story(spark, args):
    from pyspark import SparkFiles, StorageLevel

    keep = StorageLevel.MEMORY_AND_DISK
    sc = spark.sparkContext
    neardup = args.neardup
    lines = read_inputs(sc, args, lambda path: story_partitions(path, args.partitions))
    flags = input_flags(args)

    # 1. The whole input's statistics, summed from the partitions'.
    # One more part with no documents, so that an empty input has statistics too.
    nothing = sc.parallelize([None], 1).map(lambda _: counted_statistics(neardup, flags, []))
    statistics = (lines.mapPartitions(lambda part: [counted_statistics(neardup, flags, part)])
                  .union(nothing)
                  .treeReduce(lambda x, y: merged_statistics(neardup, x, y)))
    import tempfile

    shipped = tempfile.mkdtemp(prefix="neardup-spark-")
    with open(os.path.join(shipped, "corpus.stats"), "wb") as f:
        f.write(statistics)
    sc.addFile(os.path.join(shipped, "corpus.stats"))

    # 2. Story sketches weighed by them:
    #    (id, bands, date, text_bytes, record line, low byte of each signature slot).
    sketch = [neardup, "sketch", "-", "--level", "story", "-q", "--strict",
              "--seed", str(args.seed), "--shingle", args.shingle,
              "--story-candidates", repr(args.story_candidates)]
    sketches = (lines.mapPartitions(lambda part: piped(
                    sketch + flags + ["--stats", SparkFiles.get("corpus.stats")], part))
                .map(lambda line: (json.loads(line), line))
                .map(lambda r: (r[0]["id"], r[0]["bands"], r[0]["date"], r[0]["text_bytes"],
                                r[1], base64.b64decode(r[0]["signature"])[0::4]))
                .persist(keep))
    documents = sketches.count()
    refuse_repeated_ids(sketches.map(lambda r: r[0]))

    # 3. Candidates: documents sharing a band key. With two-slot bands most bucket mates
    # share too little (at 300,000 articles, 37.5 million collisions for 374,000 pairs
    # worth scoring), so they are cut inside each bucket, as neardup cuts them: each member
    # carries the low byte of every signature slot and its date, and a pair whose bytes
    # agree on fewer slots than neardup's estimate floor (an upper bound of the slots
    # that agree), or whose dates are further apart than the window, is dropped there.
    # neardup verify then applies the exact floor and window to the rest.
    cap, floor = story_banding(neardup, args)
    window = window_seconds(args.window)
    buckets = (sketches.flatMap(lambda r: [((band, key), (r[0], r[5], r[2]))
                                           for band, key in enumerate(r[1])])
               .groupByKey()
               .mapValues(list)
               .filter(lambda kv: len(kv[1]) > 1)
               .persist(keep))
    oversized = buckets.filter(lambda kv: len(kv[1]) > cap).count()
    plausible = (buckets.flatMap(lambda kv: story_bucket_pairs(kv[1], cap, floor, window))
                 .distinct())

    # 4. Each candidate judged by neardup from the two records.
    records = sketches.map(lambda r: (r[0], r[4]))
    verify = [neardup, "verify", "-", "--level", "story", "-q", "--stats",
              SparkFiles.get("corpus.stats")] + story_flags(args)
    candidate_lines = paired_records(plausible, records).persist(keep)
    candidate_pairs = candidate_lines.count()
    judged = (candidate_lines.mapPartitions(lambda part: piped(verify, part))
              .map(lambda line: (json.loads(line), line))
              .map(lambda r: (r[0]["a"], r[0]["b"], r[1], r[0]))
              .persist(keep))
    scored_pairs = judged.count()
    same_story = judged.filter(lambda p: p[3]["same_story"]).sortBy(lambda p: (p[0], p[1]))
    (same_story.map(lambda p: record_line(p[3], STORY_PAIR_FIELDS))
     .saveAsTextFile(os.path.join(args.output, "pairs")))

    # 5. The connected components of the same-story pairs, linked by neardup (majority
    # linkage only merges along same-story pairs, so components link apart).
    link = [neardup, "link", "-", "--level", "story", "-q"] + story_threshold_flag(args)
    clusters = linked_clusters(sc, args.output, link, judged, records,
                               joins=lambda record: record["same_story"])
    summary = {"level": "story", "documents": documents, "candidate_pairs": candidate_pairs,
               "scored_pairs": scored_pairs,
               "verified_pairs": same_story.count(),
               "clusters": len(clusters),
               "clustered_documents": sum(len(c[0]) for c in clusters),
               "oversized_buckets": oversized, "window": args.window}
    if args.dedup:
        summary["dropped"] = dedup(sc, args, lines, clusters)
    if is_remote(args.output):
        write_small(sc, args.output, "corpus.stats.base64",
                    [base64.b64encode(statistics).decode("ascii")])
    else:
        shutil.copyfile(os.path.join(shipped, "corpus.stats"),
                        os.path.join(args.output, "corpus.stats"))
    shutil.rmtree(shipped, ignore_errors=True)
    write_small(sc, args.output, "summary.json", [json.dumps(summary, indent=1)])
    return summary


def dedup(sc, args, lines, clusters):
    """Writes kept/ and dropped.jsonl; returns how many records were dropped. `clusters`:
    (members, the member kept) in output order."""
    dropped = {}
    for n, (members, kept) in enumerate(clusters, 1):
        for doc in members:
            if doc != kept:
                dropped[doc] = (kept, n)
    write_small(sc, args.output, "dropped.jsonl",
                [json.dumps({"id": doc, "kept": kept, "cluster": n},
                            separators=(",", ":"), ensure_ascii=False)
                 for doc, (kept, n) in sorted(dropped.items())])
    gone = sc.broadcast(set(dropped))
    id_field = args.id_field

    def record_id(line):
        value = json.loads(line).get(id_field)
        return value if isinstance(value, str) else json.dumps(value)

    (lines.filter(lambda line: line.strip() and record_id(line) not in gone.value)
     .saveAsTextFile(os.path.join(args.output, "kept")))
    return len(dropped)


def is_remote(output):
    return "://" in output or output.startswith(("hdfs:", "s3a:", "gs:"))


def write_small(sc, output, name, lines):
    """A driver-side result: a local file when the output is local, else one Spark part
    file in the directory `name` (on HDFS, S3, ...)."""
    if is_remote(output):
        sc.parallelize(lines, 1).saveAsTextFile(output.rstrip("/") + "/" + name)
        return
    with open(os.path.join(output, name), "w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")


def main(argv):
    args = parse_args(argv)
    if not (os.path.isfile(args.neardup) or shutil.which(args.neardup)):
        print("neardup_spark: warning: %r is not a neardup binary on this machine; it must be "
              "on every worker (--neardup PATH)" % args.neardup, file=sys.stderr)
    # Python workers run the driver's Python unless told otherwise, so that a local run
    # finds the modules it was started with (zstandard).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession  # imported late: --help works without pyspark

    builder = SparkSession.builder.appName("neardup")
    if args.master:
        builder = builder.master(args.master)
    if args.driver_memory:
        builder = builder.config("spark.driver.memory", args.driver_memory)
    spark = (builder.config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        summary = run(spark, args)
    finally:
        spark.stop()
    print("neardup_spark: %(documents)d documents, %(candidate_pairs)d candidate pairs, "
          "%(verified_pairs)d verified pairs, %(clusters)d clusters "
          "(%(clustered_documents)d documents)" % summary, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
