"""Load on `swinir web`: 50 concurrent small jobs and 5 cancels against a server on 127.0.0.1.

Starts ``swinir web`` (a child process, so its memory is its own) with a model, warms it up with one
job, then from 50 threads at once uploads 50 different small images and cancels 5 of them right
after they were accepted. It then checks that

* every accepted job ends ``done`` or ``cancelled`` (none lost: every id is still known at the end;
  none duplicated: 50 distinct ids, and the server's count of completed jobs rose by exactly the
  number of ``done`` ones),
* every result is correct: the PNG equals, pixel for pixel, what ``swinir.Upscaler`` with the same
  model and tiling makes in this process,
* the server's memory stays bounded: its resident memory is sampled every 20 ms; the peak
  (``VmHWM``) is reported against the warmed-up baseline,

and reports throughput (jobs/s and input megapixels/s, first upload to last finish), beside the
baseline: the same images upscaled one after another by ``swinir.Upscaler`` in this process. Their
ratio is what the HTTP layer, the queue and the PNG round trips cost.

    .venv/bin/python benchmarks/web_load.py                        # tiny random-weight model
    .venv/bin/python benchmarks/web_load.py --model default --size 96
    .venv/bin/python benchmarks/web_load.py --json load.json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

import swinir
from swinir.model import SwinIR, SwinIRConfig

FINAL = ("done", "failed", "cancelled")


def tiny_model(folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    path = folder / "tiny.safetensors"
    cfg = SwinIRConfig(depths=(2,), num_heads=(2,), embed_dim=16, upscale=2, window_size=8)
    swinir.save_model(SwinIR(cfg), path)
    return path


def image(size: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def http(method: str, url: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": ctype} if ctype else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def upload(base: str, data: bytes, name: str) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, reply = http("POST", base + "/api/jobs", body, f"multipart/form-data; boundary={boundary}")
    return status, json.loads(reply)


def proc_status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(model: str, tile: int, overlap: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "swinir.cli", "web", "--port", "0", "--quiet", "--models", f"m={model}",
           "--tile", str(tile), "--tile-overlap", str(overlap), "--device", "cpu",
           "--max-queue", "64"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**__import__("os").environ, "TMPDIR": str(tmp)})  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"(http://\S+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, match.group(1).rstrip("/")
    raise SystemExit("the server did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="zoo name or weights file (default: a tiny random model)")
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--cancels", type=int, default=5)
    ap.add_argument("--size", type=int, default=64, help="edge of the square test images")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--overlap", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        model = args.model or str(tiny_model(tmp))
        images = [image(args.size, seed) for seed in range(args.jobs)]

        # Baseline: the library in this process, one image after another.
        up = swinir.Upscaler(model, device="cpu", tile=args.tile, tile_overlap=args.overlap)
        up.upscale(Image.open(io.BytesIO(images[0])))  # warm-up
        t0 = time.perf_counter()
        expected = [np.asarray(up.upscale(Image.open(io.BytesIO(d)))) for d in images]
        direct_s = time.perf_counter() - t0

        proc, base = start_server(model, args.tile, args.overlap, tmp)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http("GET", base + "/api/status")[0] == 200:
                        break
                except (urllib.error.URLError, ConnectionError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not answer")
                time.sleep(0.1)
            status, warm = upload(base, images[0], "warm.png")
            assert status == 202, warm
            while json.loads(http("GET", f"{base}/api/jobs/{warm['id']}")[1])["state"] not in FINAL:
                time.sleep(0.05)
            completed_before = json.loads(http("GET", base + "/api/status")[1])["completed_total"]
            baseline_mib = proc_status(proc.pid, "VmRSS")
            samples: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(proc_status(proc.pid, "VmRSS"))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()

            cancel_at = (
                set(np.linspace(5, args.jobs - 1, args.cancels).astype(int).tolist())
                if args.cancels
                else set()
            )
            cancelled_reply: dict[int, str] = {}

            def client(i: int) -> tuple[int, int, dict]:
                status, job = upload(base, images[i], f"load{i}.png")
                if status == 202 and i in cancel_at:
                    code, reply = http("DELETE", f"{base}/api/jobs/{job['id']}")
                    cancelled_reply[i] = json.loads(reply)["state"] if code == 200 else f"HTTP {code}"
                return i, status, job

            start = time.perf_counter()
            with ThreadPoolExecutor(args.jobs) as pool:
                submitted = list(pool.map(client, range(args.jobs)))
            refused = [(i, s, j) for i, s, j in submitted if s != 202]
            ids = {i: j["id"] for i, s, j in submitted if s == 202}
            finals: dict[int, dict] = {}
            while len(finals) < len(ids):
                for i, job_id in ids.items():
                    if i in finals:
                        continue
                    code, reply = http("GET", f"{base}/api/jobs/{job_id}")
                    if code != 200:
                        finals[i] = {"state": f"lost (HTTP {code})"}
                    elif (job := json.loads(reply))["state"] in FINAL:
                        finals[i] = job
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            stop.set()
            sampler.join()
            peak_mib = proc_status(proc.pid, "VmHWM")

            done = [i for i, j in finals.items() if j["state"] == "done"]
            wrong = []
            for i in done:
                code, data = http("GET", f"{base}/api/jobs/{ids[i]}/result")
                if code != 200 or not np.array_equal(np.asarray(Image.open(io.BytesIO(data))), expected[i]):
                    wrong.append(i)
            completed_after = json.loads(http("GET", base + "/api/status")[1])["completed_total"]
        finally:
            proc.terminate()
            proc.wait(30)

    states = [j["state"] for j in finals.values()]
    result = {
        "jobs": args.jobs,
        "accepted": len(ids),
        "refused": len(refused),
        "distinct_ids": len(set(ids.values())),
        "done": states.count("done"),
        "cancelled": states.count("cancelled"),
        "failed": states.count("failed"),
        "lost": sum(s.startswith("lost") for s in states),
        "cancel_requests": len(cancel_at),
        "completed_counter_delta": completed_after - completed_before,
        "wrong_results": len(wrong),
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(states.count("done") / elapsed, 2),
        "input_mpix_per_s": round(states.count("done") * args.size**2 / 1e6 / elapsed, 4),
        "direct_jobs_per_s": round(args.jobs / direct_s, 2),
        "server_vs_direct": round((states.count("done") / elapsed) / (args.jobs / direct_s), 3),
        "rss_baseline_mib": round(baseline_mib, 1),
        "rss_peak_sampled_mib": round(max(samples, default=baseline_mib), 1),
        "rss_hwm_mib": round(peak_mib, 1),
    }
    print(f"swinir web load: {args.jobs} concurrent {args.size}x{args.size} jobs, {len(cancel_at)} cancels, "
          f"model {args.model or 'tiny random'}")  # fmt: skip
    for key, value in result.items():
        print(f"  {key:24} {value}")
    ok = (
        not refused
        and result["distinct_ids"] == len(ids) == args.jobs
        and result["lost"] == 0
        and result["failed"] == 0
        and result["done"] + result["cancelled"] == args.jobs
        and result["completed_counter_delta"] == result["done"]
        and not wrong
    )
    print(
        "  verdict                  "
        + ("OK: every job done or cancelled, results correct" if ok else "FAILED")
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
