#!/usr/bin/env python3
"""Writes a larger input for memory and speed runs: the three corpora of NEARDUP_DATA
(or the directory given) five times over, copy 0 as is and copies 1-4 with one word in
40 replaced, ids suffixed ~K. With the shared data: 200,570 records, 304 MB.

    scripts/scale-copies.py ../shared/data > big.jsonl
"""
import gzip
import json
import os
import random
import sys


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NEARDUP_DATA")
    if not data:
        sys.exit("usage: scale-copies.py DATA_DIR > big.jsonl (or set NEARDUP_DATA)")
    random.seed(3)
    docs = []
    for line in open(os.path.join(data, "reuters21578.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        docs.append({"id": d["id"], "date": d.get("date"), "text": d["text"]})
    for line in open(os.path.join(data, "bbc-news.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        docs.append({"id": d["id"], "text": d["text"]})
    for line in gzip.open(os.path.join(data, "20newsgroups.jsonl.gz"), "rt", encoding="utf-8"):
        d = json.loads(line)
        docs.append({"id": d["id"], "text": d["text"]})
    out = sys.stdout
    for k in range(5):
        for d in docs:
            text = d["text"]
            if k:
                words = text.split(" ")
                for _ in range(max(1, len(words) // 40)):
                    if words:
                        words[random.randrange(len(words))] = "x%d" % random.randrange(10**6)
                text = " ".join(words)
            record = dict(d)
            record["id"] = f'{d["id"]}~{k}'
            record["text"] = text
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
