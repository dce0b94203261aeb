#!/usr/bin/env python3
"""Checks that stalled clients do not stop `neardup serve` from answering others.

    neardup index create -q idx && neardup serve idx --listen 127.0.0.1:8080 --threads 2 &
    python3 scripts/serve-stall.py --url http://127.0.0.1:8080 --stalled 20

Opens `--stalled` connections that each send a request head and the first bytes of a
100 kB body and then nothing, one that sends nothing at all and one that stops mid-head;
then posts one article and prints one JSON line: whether and how fast it was answered,
and what the first stalled connection got back and when.
"""

import argparse
import json
import socket
import sys
import time
import urllib.parse
import urllib.request


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--stalled", type=int, default=20)
    p.add_argument("--wait", type=float, default=5.0,
                   help="seconds to wait for each answer")
    args = p.parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    address = (url.hostname, url.port)
    stalled = []
    for _ in range(args.stalled):
        s = socket.create_connection(address)
        s.sendall(b"POST /articles HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"id\":")
        stalled.append(s)
    silent = socket.create_connection(address)
    half = socket.create_connection(address)
    half.sendall(b"POST /articles HTTP/1.1\r\nHo")
    time.sleep(0.3)
    report = {"stalled": args.stalled}
    started = time.perf_counter()
    body = json.dumps({"id": "probe-%d" % time.time_ns(), "text": "a probe article"}) + "\n"
    try:
        answer = urllib.request.urlopen(
            urllib.request.Request(args.url + "/articles", data=body.encode()),
            timeout=args.wait)
        report["probe"] = answer.status
    except Exception as e:  # a timeout is the finding, not a failure of the script
        report["probe"] = str(e)
    report["probe_seconds"] = round(time.perf_counter() - started, 3)
    stalled[0].settimeout(args.wait)
    started = time.perf_counter()
    try:
        first = stalled[0].recv(200).split(b"\r\n")[0].decode()
    except socket.timeout:
        first = "nothing"
    report["stalled_answer"] = first
    report["stalled_answer_after_s"] = round(time.perf_counter() - started, 3)
    for s in stalled + [silent, half]:
        s.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
