#!/usr/bin/env python3
"""Pushes a JSON Lines file to `neardup serve` from several clients at once and reports
throughput and the time to answer each request.

    neardup index create idx && neardup serve idx --listen 127.0.0.1:8080 &
    python3 scripts/serve-bench.py reuters21578.jsonl --url http://127.0.0.1:8080 \\
        --clients 8 --batch 1

Each client takes every `clients`-th request of `batch` lines and posts them one after
another (HTTP/1.1, one connection per client). Every answer must hold one verdict per
article, or the run fails. Prints one JSON line: articles, requests, seconds,
articles per second, the answer time's median, p99 and maximum in milliseconds, and the
answers' bytes as received. `--accept-encoding gzip` (or zstd, which needs the
`zstandard` module) asks for compressed answers, which are decompressed and checked.
An https:// URL is spoken over TLS (each client shakes hands once), trusting the
certificate of `--cacert` (`serve --tls-cert`).
"""

import argparse
import gzip
import http.client
import json
import math
import ssl
import sys
import threading
import time
import urllib.parse


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="JSON Lines, one article per line")
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batch", type=int, default=1, help="articles per request")
    p.add_argument("--limit", type=int, default=None, help="only the first N articles")
    p.add_argument("--path", default="/articles",
                   help="/articles (store) or /query (check only)")
    p.add_argument("--accept-encoding", default=None, choices=["gzip", "zstd"],
                   help="ask for answers compressed so")
    p.add_argument("--cacert", default=None,
                   help="for an https:// URL: the certificate (PEM) to trust")
    args = p.parse_args(argv)
    decoders = {None: lambda data: data, "gzip": gzip.decompress}
    if args.accept_encoding == "zstd":
        import zstandard
        decoders["zstd"] = lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data)
    headers = {"Accept-Encoding": args.accept_encoding} if args.accept_encoding else {}
    with open(args.input, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    if args.limit is not None:
        lines = lines[:args.limit]
    requests = [b"\n".join(lines[i:i + args.batch]) + b"\n"
                for i in range(0, len(lines), args.batch)]
    url = urllib.parse.urlsplit(args.url)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=args.cacert)

        def connect():
            return http.client.HTTPSConnection(url.hostname, url.port, context=context)
    else:
        def connect():
            return http.client.HTTPConnection(url.hostname, url.port)
    latencies = []
    received = [0]
    failures = []
    lock = threading.Lock()

    def client(k):
        connection = connect()
        mine = []
        mine_bytes = 0
        for body in requests[k::args.clients]:
            started = time.perf_counter()
            connection.request("POST", args.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            mine_bytes += len(data)
            data = decoders[answer.getheader("Content-Encoding")](data)
            mine.append(time.perf_counter() - started)
            sent = body.count(b"\n")
            if answer.status != 200 or data.count(b"\n") != sent:
                with lock:
                    failures.append("status %d, %d answers for %d articles: %r"
                                    % (answer.status, data.count(b"\n"), sent, data[:200]))
                return
        with lock:
            latencies.extend(mine)
            received[0] += mine_bytes

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if failures:
        sys.exit("serve-bench: " + failures[0])
    latencies.sort()

    def rank(q):
        return latencies[max(1, math.ceil(q * len(latencies))) - 1] * 1e3

    print(json.dumps({
        "articles": len(lines), "requests": len(requests), "clients": args.clients,
        "batch": args.batch, "seconds": round(seconds, 3),
        "articles_per_second": round(len(lines) / seconds),
        "median_ms": round(rank(0.5), 3), "p99_ms": round(rank(0.99), 3),
        "max_ms": round(latencies[-1] * 1e3, 3), "answer_bytes": received[0],
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
