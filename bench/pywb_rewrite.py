"""pywb's HTML rewriter on the benchmark's documents; run with a python that has pywb.

Prints {"a": MB/s, "b": MB/s}. pywb rewrites every URL into its archive form, which is the same
work (find each URL in an HTML page and replace it) that Carrel's rewriter does.
"""

import json
import sys
import time

from pywb.rewrite.html_rewriter import HTMLRewriter
from pywb.rewrite.url_rewriter import UrlRewriter


def rate(files, repeat):
    docs = []
    for url, path in files:
        with open(path, "rb") as fh:
            docs.append((url, fh.read()))
    size = sum(len(body) for _, body in docs)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for url, body in docs:
            urlrewriter = UrlRewriter("20140101000000/" + url, "/web/")
            rewriter = HTMLRewriter(urlrewriter)
            text = body.decode("utf-8", "replace")
            for i in range(0, len(text), 65536):
                rewriter.rewrite(text[i : i + 65536])
            rewriter.close()
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6


with open(sys.argv[1]) as fh:
    manifest = json.load(fh)
print(json.dumps({name: rate(files, int(sys.argv[2])) for name, files in manifest.items()}))
