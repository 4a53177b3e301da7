"""Loopback load test of ``meiyan serve``, and the latency of ``POST /v1/beautify`` at 1080p.

    .venv/bin/python bench/serve_load.py [--requests 240] [--clients 8] [--workers 2]

Starts ``meiyan serve`` in a child process on a free loopback port, then ``--clients`` threads
send ``--requests`` requests in all, spread over every endpoint (the shipped 512x512 sample;
makeup with a look, edit with the classic engine and a small mask), and stop; a client answered
503 waits ``--backoff`` seconds before its next request, as a well-behaved client would (0:
resend at once, which makes most answers 503). Reported: the
status codes (only 200 and, under overload, 503 are allowed), p50/p95 latency per endpoint,
and the server's resident memory after a warm-up round and at the end. Then, one request at a
time: ``POST /v1/beautify`` of a 1080p portrait (the second high-resolution portrait of
``../shared/data`` reduced to 1280x1920, else the sample enlarged) against ``meiyan.beautify``
on the decoded image in this process (medians of ``--runs``), which keeps freed memory for reuse
as the server's does (:func:`meiyan.keep_freed_memory`).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
PORTRAIT = DATA / "portraits" / "hires_pexels_mateus_souza_3586798.jpg"


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def requests_by_endpoint() -> dict[str, tuple[dict, dict]]:
    """(form fields, files) of one request per endpoint."""
    jpeg = SAMPLE.read_bytes()
    hole = np.zeros((512, 512), np.uint8)
    hole[300:330, 100:140] = 255
    with Image.open(SAMPLE) as im:
        png = _png(np.asarray(im.convert("RGB")))
    return {
        "beautify": ({"preset": "natural"}, {"image": jpeg}),
        "smooth": ({"strength": "0.6"}, {"image": jpeg}),
        "mask": ({}, {"image": jpeg}),
        "landmarks": ({}, {"image": jpeg}),
        "makeup": ({"look": "natural"}, {"image": jpeg}),
        "edit": ({"engine": "classic"}, {"image": png, "mask": _png(hole)}),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-c", "from meiyan.cli.main import main; main()", "serve",
           "--port", str(port), "--workers", str(workers), "--queue", str(queue)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


ERRORS: dict[str, str] = {}
"""The first error body of each status other than 200 and 503."""


def post(client: httpx.Client, url: str, job: str, form: tuple[dict, dict]) -> tuple[int, float]:
    data, files = form
    t = time.perf_counter()
    r = client.post(f"{url}/v1/{job}", data=data,
                    files={k: (k, v) for k, v in files.items()}, timeout=120)
    if r.status_code not in (200, 503):
        ERRORS.setdefault(f"{job} {r.status_code}", r.text)
    return r.status_code, time.perf_counter() - t


def load(url: str, total: int, clients: int, backoff: float) -> tuple[dict, Counter]:
    forms = requests_by_endpoint()
    names = list(forms)
    times: dict[str, list[float]] = defaultdict(list)
    codes: Counter = Counter()
    lock = threading.Lock()
    counter = iter(range(total))

    def client_loop() -> None:
        with httpx.Client() as client:
            for i in counter:
                job = names[i % len(names)]
                code, dt = post(client, url, job, forms[job])
                with lock:
                    codes[(job, code)] += 1
                    if code == 200:
                        times[job].append(dt)
                if code == 503:
                    time.sleep(backoff)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, codes


def portrait_1080p() -> tuple[np.ndarray, str]:
    if PORTRAIT.is_file():
        with Image.open(PORTRAIT) as im:
            im = im.convert("RGB")
            scale = 1920 / max(im.size)
            small = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
            return np.asarray(small), f"{PORTRAIT.name} reduced to {small.width}x{small.height}"
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB").resize((1080, 1080), Image.LANCZOS)), \
            "the sample enlarged to 1080x1080"


def latency(url: str, runs: int) -> None:
    import meiyan

    meiyan.keep_freed_memory()  # as the server's process does, so that both run alike
    pixels, what = portrait_1080p()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95)
    jpeg = buf.getvalue()
    meiyan.beautify(pixels)  # warm-up
    direct = []
    for _ in range(runs):
        t = time.perf_counter()
        meiyan.beautify(pixels)
        direct.append(time.perf_counter() - t)
    rest = []
    with httpx.Client() as client:
        post(client, url, "beautify", ({}, {"image": jpeg}))
        for _ in range(runs):
            code, dt = post(client, url, "beautify", ({}, {"image": jpeg}))
            assert code == 200, code
            rest.append(dt)
    d, r = statistics.median(direct) * 1000, statistics.median(rest) * 1000
    print(f"\n1080p: {what}, JPEG of {len(jpeg) / 2**20:.1f} MB, median of {runs}\n")
    print("| what | median ms | fastest ms |\n|---|---:|---:|")
    print(f"| meiyan.beautify, decoded image, this process | {d:.0f} | "
          f"{min(direct) * 1000:.0f} |")
    print(f"| POST /v1/beautify (upload, decode, beautify, encode) | {r:.0f} | "
          f"{min(rest) * 1000:.0f} |")
    print(f"\nREST adds {r - d:.0f} ms to the median (target: at most 100 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=240)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--queue", type=int, default=4)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backoff", type=float, default=0.25, help="seconds a client waits after 503")
    args = ap.parse_args()
    proc, url = start_server(args.workers, args.queue)
    try:
        load(url, 2 * len(requests_by_endpoint()), args.clients, args.backoff)  # warm-up
        before = rss_mb(proc.pid)
        t = time.perf_counter()
        times, codes = load(url, args.requests, args.clients, args.backoff)
        wall = time.perf_counter() - t
        after = rss_mb(proc.pid)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}; {args.requests} requests from {args.clients} clients, "
              f"{args.workers} workers, queue {args.queue}, {args.backoff:g} s back-off after "
              f"503, {wall:.1f} s\n")
        print("| endpoint | 200 | 503 | other | p50 ms | p95 ms |\n|---|---:|---:|---:|---:|---:|")
        for job in requests_by_endpoint():
            ok = sorted(times[job])
            other = sum(n for (j, c), n in codes.items() if j == job and c not in (200, 503))
            p50 = statistics.median(ok) * 1000 if ok else float("nan")
            p95 = ok[min(len(ok) - 1, int(0.95 * len(ok)))] * 1000 if ok else float("nan")
            print(f"| {job} | {codes[(job, 200)]} | {codes[(job, 503)]} | {other} | {p50:.0f} | "
                  f"{p95:.0f} |")
        growth = 100 * (after - before) / before
        print(f"\nserver RSS after warm-up {before:.0f} MB, at the end {after:.0f} MB "
              f"({growth:+.1f}%; target under 10%)")
        bad = sum(n for (_, c), n in codes.items() if c not in (200, 503))
        for where, body in ERRORS.items():
            print(f"error: {where}: {body}")
        latency(url, args.runs)
    finally:
        proc.terminate()
        proc.wait(10)
    if bad or growth >= 10:
        raise SystemExit(f"failed: {bad} errors other than 503, RSS growth {growth:+.1f}%")


if __name__ == "__main__":
    main()
