"""The README's art sheet (``docs/art-compare.png``): one Art/val crop as a JPEG, x2, side by side.

The 320x320 HR crop at (x 300, y 160) of Pepper&Carrot "Fixing the project" is made into LR the way
``peers.py`` makes level 2 (MATLAB bicubic x1/2, then JPEG quality 60); waifu2x UpConv7 (anime) and
CUNet run on it with noise level 2 (CUNet through ``ncnn_torch``, as in ``peers.py``, where ncnn's
CPU path is wrong); then ``swinir compare`` lays out LR, bicubic, ``default``, ``art --noise 2``,
the two waifu2x outputs and HR, with Y-PSNR on the crop in the labels. In the benchmark env:

    .venv-peers/bin/python benchmarks/art_sheet.py --art-val /path/to/Art/val -o docs/art-compare.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from peers import WAIFU2X, make_lr, read_rgb, waifu2x, waifu2x_torch

CROP = (300, 160, 320, 320)  # x, y, width, height in HR pixels
IMAGE = "peppercarrot/pc_fixing-the-project.png"
LEVEL = 2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--art-val", required=True, help="the Art/val folder")
    p.add_argument("-o", "--output", default="docs/art-compare.png")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    from swinir.cli import main as swinir

    x, y, w, h = CROP
    hr = read_rgb(Path(args.art_val) / IMAGE)[y : y + h, x : x + w]
    lr = make_lr(hr, LEVEL)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.fromarray(hr).save(folder / "hr.png")
        Image.fromarray(lr).save(folder / "lr.png")  # the decoded JPEG, stored losslessly
        upconv = waifu2x(WAIFU2X["waifu2x UpConv7 anime"], LEVEL, args.threads, -1)
        Image.fromarray(upconv(lr)).save(folder / "upconv7.png")
        cunet = waifu2x_torch(WAIFU2X["waifu2x CUNet"], LEVEL, args.threads)
        Image.fromarray(cunet(lr)).save(folder / "cunet.png")
        return swinir(
            [
                "compare", str(folder / "lr.png"), "-o", args.output,
                "--model", "default", "--model", f"art-noise{LEVEL}",
                "--other", f"waifu2x UpConv7 noise {LEVEL}={folder / 'upconv7.png'}",
                "--other", f"waifu2x CUNet noise {LEVEL}={folder / 'cunet.png'}",
                "--hr", str(folder / "hr.png"), "--quiet",
            ]
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
