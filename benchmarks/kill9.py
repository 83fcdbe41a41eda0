"""Kill -9 at random moments of a folder run and of training; check that nothing is lost or half-done.

For each of the two workloads, an uninterrupted reference run is made first. Then, ``--rounds``
times, the same command (``upscale --skip-existing`` / ``train --resume``) is started and sent
SIGKILL at a random moment up to the reference run's duration (two rounds in three after the start-up time,
measured on a one-image or one-step run, so that most kills land in the work itself). After every kill:

- every output that exists is complete: each image is byte-identical to the reference output, each
  ``step_*.pt`` loads as a training checkpoint;
- every run that had a checkpoint to resume from resumed from the newest one (or was killed before
  it got that far), and no run failed.

A last uninterrupted run must finish; afterwards no temporary file of ours is left anywhere, the
outputs equal the reference outputs, and the trained weights equal the uninterrupted run's bit for
bit.

    .venv/bin/python benchmarks/kill9.py --rounds 10 [--seed 0] [--keep DIR]

Prints one line per round and a summary; the exit status is 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMP_RE = re.compile(r"\.swinir-\d+-.*\.tmp$")


@dataclass
class Report:
    name: str
    rounds: int = 0
    killed: int = 0  # rounds ended by the kill (the others finished first)
    temps_after_kill: int = 0  # temporary files a kill left behind (removed by a later run)
    resumed: int = 0  # runs that resumed from the newest checkpoint
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = f", {self.resumed} resumed" if self.name == "training" else ""
        status = "OK" if not self.problems else f"{len(self.problems)} PROBLEM(S)"
        return (
            f"{self.name}: {self.rounds} rounds, {self.killed} killed mid-run, {self.temps_after_kill} temp "
            f"file(s) left by kills{extra}: {status}"
        )


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "swinir.cli", *args]


def _run_killed(args: list[str], due: Callable[[float], bool], log: Path, limit: float = 120.0) -> int:
    """Start the CLI and SIGKILL it as soon as ``due(seconds since start)`` (unless it ended first)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(_cli(args), env=_env(), stdout=subprocess.DEVNULL, stderr=err)
        start = time.perf_counter()
        while proc.poll() is None:
            elapsed = time.perf_counter() - start
            if due(elapsed) or elapsed > limit:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        return proc.wait()


def _after(count: Callable[[], int], target: int, extra: float) -> Callable[[float], bool]:
    """Due ``extra`` seconds after ``count()`` first reaches ``target``."""
    reached: list[float] = []

    def due(elapsed: float) -> bool:
        if not reached and count() >= target:
            reached.append(elapsed)
        return bool(reached) and elapsed >= reached[0] + extra

    return due


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_RE.search(p.name)]


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(_cli(args), env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"reference run failed: {' '.join(args)}\n{done.stderr}")
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Folder run
# ---------------------------------------------------------------------------------------------


def folder_rounds(work: Path, rounds: int, rng: random.Random, images: int = 24, size: int = 160) -> Report:
    import numpy as np
    import torch
    from PIL import Image

    import swinir
    from swinir.imageio import incomplete_reason
    from swinir.model import SwinIR, SwinIRConfig, preset

    report = Report("folder run")
    src = work / "in"
    src.mkdir(parents=True)
    pixels = np.random.default_rng(0)
    for i in range(images):
        image = Image.fromarray(pixels.integers(0, 256, (size, size, 3), dtype=np.uint8))
        image.save(src / f"img_{i:02d}.png")
    torch.manual_seed(0)
    config = {**preset("lightweight_x2").to_dict(), "depths": [2], "num_heads": [2], "embed_dim": 16}
    model = work / "tiny.safetensors"
    swinir.save_model(SwinIR(SwinIRConfig.from_dict(config)), model)
    common = ["-m", str(model), "--device", "cpu", "--skip-existing", "-q"]
    reference = work / "reference"
    startup = _timed(["upscale", str(src / "img_00.png"), "-o", str(work / "one"), *common])
    _timed(["upscale", str(src), "-o", str(reference), *common])
    expected = {p.name: p.read_bytes() for p in reference.iterdir()}

    out = work / "out"

    def outputs() -> int:
        return sum(1 for p in out.glob("*.png") if not p.name.startswith(".")) if out.exists() else 0

    for r in range(rounds):
        if outputs() >= images - 2:  # (nearly) done: start over, so every round has work to cut
            shutil.rmtree(out)
        have = outputs()
        if r % 4 == 0:  # at a moment in time: often during start-up
            when = rng.uniform(0.2, startup)
            due: Callable[[float], bool] = lambda t, when=when: t >= when  # noqa: E731
            moment = f"{when:.2f} s after start"
        else:  # in the work: a little after the k-th new output appeared
            target, extra = have + 1 + rng.randrange(images - have - 1), rng.uniform(0.0, 0.3)
            due = _after(outputs, target, extra)
            moment = f"{extra:.2f} s after output {target}"
        code = _run_killed(["upscale", str(src), "-o", str(out), *common], due, work / f"upscale_{r}.log")
        report.rounds += 1
        report.killed += code == -signal.SIGKILL
        if code not in (0, -signal.SIGKILL):
            text = (work / f"upscale_{r}.log").read_text()
            report.problems.append(f"round {r}: exit status {code}: {text[-500:]}")
        done = sorted(p for p in out.glob("*") if not p.name.startswith(".")) if out.exists() else []
        for p in done:
            if incomplete_reason(p) is not None or p.read_bytes() != expected.get(p.name):
                report.problems.append(f"round {r}: {p.name} exists but is not the complete output")
        temps = _temps(out) if out.exists() else []
        report.temps_after_kill += len(temps)
        print(f"  folder round {r}: kill {moment}: {len(done)}/{images} outputs, {len(temps)} temp file(s)")

    final = subprocess.run(
        _cli(["upscale", str(src), "-o", str(out), *common]), env=_env(), capture_output=True
    )
    if final.returncode != 0:
        report.problems.append(f"final run: exit status {final.returncode}: {final.stderr.decode()}")
    left = _temps(out)
    if left:
        report.problems.append(f"temporary files survived the final run: {[p.name for p in left]}")
    got = {p.name: p.read_bytes() for p in out.iterdir()}
    if got != expected:
        report.problems.append(f"final outputs differ from the reference: {sorted(set(got) ^ set(expected))}")
    return report


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _train_args(root: Path, out: Path, steps: int) -> list[str]:
    sets = [
        'model.preset="lightweight_x2"', "model.embed_dim=8", "model.depths=[1]", "model.num_heads=[2]",
        "model.window_size=4", "model.drop_path_rate=0.1", f'data.train_dirs=["{root}"]', "data.patch_size=8",
        "data.batch_size=2", "data.lanes=1", "data.workers=0", "data.buffer_images=2",
        f"schedule.total_steps={steps}", "schedule.kind=\"cosine\"", "logging.save_every=2",
        "logging.keep_last=3", "logging.log_every=5", "logging.tensorboard=false", "training.threads=1",
    ]  # fmt: skip
    args = ["train", "--out-dir", str(out)]
    for s in sets:
        args += ["--set", s]
    return args


def _newest_step(out: Path) -> int:
    from swinir.train import checkpoint_paths

    found = checkpoint_paths(out)
    return int(found[-1].stem.split("_")[1]) if found else 0


def training_rounds(work: Path, rounds: int, rng: random.Random, steps: int = 240) -> Report:
    import numpy as np
    import torch
    from PIL import Image

    from swinir.train import checkpoint_paths, read_training_checkpoint

    report = Report("training")
    data = work / "train"
    data.mkdir(parents=True)
    pixels = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(pixels.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"t{i}.png")
    reference = work / "ref_run"
    startup = _timed(_train_args(data, work / "short_run", 1))
    _timed(_train_args(data, reference, steps))
    want = read_training_checkpoint(checkpoint_paths(reference)[-1])

    out = work / "run"
    for r in range(rounds):
        if _newest_step(out) >= steps - 10:  # (nearly) finished: start over, so every round has steps to cut
            shutil.rmtree(out)
        had = checkpoint_paths(out)
        newest = read_training_checkpoint(had[-1])["step"] if had else None
        log = work / f"train_{r}.log"
        if r % 4 == 0:
            when = rng.uniform(0.2, startup)
            due: Callable[[float], bool] = lambda t, when=when: t >= when  # noqa: E731
            moment = f"{when:.2f} s after start"
        else:
            first = (newest or 0) + 1
            target, extra = first + rng.randrange(steps - first), rng.uniform(0.0, 0.2)
            due = _after(lambda: _newest_step(out), target, extra)
            moment = f"{extra:.2f} s after checkpoint {target}"
        code = _run_killed([*_train_args(data, out, steps), "--resume"], due, log)
        text = log.read_text()
        report.rounds += 1
        report.killed += code == -signal.SIGKILL
        if code not in (0, -signal.SIGKILL):
            report.problems.append(f"round {r}: exit status {code}: {text[-500:]}")
        if newest is not None:
            if f"at step {newest}" in text:
                report.resumed += 1
            elif "resumed from" in text or "parameters" in text:  # it got going without the newest
                report.problems.append(f"round {r}: did not resume from step {newest}: {text[-500:]}")
        for p in checkpoint_paths(out):
            try:
                read_training_checkpoint(p)
            except Exception as exc:
                report.problems.append(f"round {r}: {p.name} does not load: {exc}")
        temps = _temps(out) if out.exists() else []
        report.temps_after_kill += len(temps)
        steps_now = [int(p.stem.split("_")[1]) for p in checkpoint_paths(out)]
        print(f"  training round {r}: kill {moment}: checkpoints {steps_now}, {len(temps)} temp file(s)")

    args = [*_train_args(data, out, steps), "--resume"]
    final = subprocess.run(_cli(args), env=_env(), capture_output=True)
    if final.returncode != 0:
        report.problems.append(f"final run: exit status {final.returncode}: {final.stderr.decode()[-500:]}")
    left = _temps(out)
    if left:
        report.problems.append(f"temporary files survived the final run: {[p.name for p in left]}")
    got = read_training_checkpoint(checkpoint_paths(out)[-1])
    if got["step"] != steps:
        report.problems.append(f"final checkpoint is at step {got['step']}, not {steps}")
    for part in ("model", "ema"):
        for key, value in want[part].items():
            if not torch.equal(value, got[part][key]):
                report.problems.append(f"{part}.{key} differs from the uninterrupted run")
                break
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="kills per workload (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default: 0)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--only", choices=("folder", "training"), default=None, help="run one workload")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        reports = []
        if args.only in (None, "folder"):
            reports.append(folder_rounds(work / "folder", args.rounds, rng))
        if args.only in (None, "training"):
            reports.append(training_rounds(work / "training", args.rounds, rng))
    for report in reports:
        print(report.line())
        for problem in report.problems:
            print(f"  {problem}")
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
