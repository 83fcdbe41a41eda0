"""Self-ensemble (``--tta``): eight flips and rotations averaged, in the API, the CLI and eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swinir.backends.self_ensemble import TRANSFORMS, apply_transform, undo_transform
from swinir.cli import main
from swinir.upscaler import Upscaler

from .test_noise import jpeg_bytes

RNG = np.random.default_rng(3)


pytestmark = pytest.mark.usefixtures("one_thread")


def _turn(img: np.ndarray, k: int, flip: bool, back: bool = False) -> np.ndarray:
    """(H, W, C) array through the transform (or its inverse) of the tensor code."""
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    out = undo_transform(t, k, flip) if back else apply_transform(t, k, flip)
    return np.ascontiguousarray(out.numpy().transpose(1, 2, 0))


def test_transforms_are_the_eight_symmetries_and_undo_inverts_them() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    images = {apply_transform(x, k, flip).flatten().tolist().__repr__() for k, flip in TRANSFORMS}
    assert len(TRANSFORMS) == 8 and len(images) == 8  # all different
    for k, flip in TRANSFORMS:
        assert torch.equal(undo_transform(apply_transform(x, k, flip), k, flip), x)


def test_tta_is_the_mean_of_the_turned_outputs_and_is_equivariant(tiny_model: str) -> None:
    # Sides are multiples of the window (8), so no padding breaks the symmetry.
    img = RNG.random((24, 40, 3), dtype=np.float32)
    plain = Upscaler(tiny_model, device="cpu", tile=0)
    tta = Upscaler(tiny_model, device="cpu", tile=0, tta=True)
    out = tta.upscale(img)
    assert out.shape == (48, 80, 3)

    # The runner's (unclipped) output is the mean of the inner runner's turned back.
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    inner = tta.runner.inner  # type: ignore[attr-defined]
    by_hand = torch.stack(
        [undo_transform(inner.forward(apply_transform(x, k, f)), k, f) for k, f in TRANSFORMS]
    )
    torch.testing.assert_close(tta.runner.forward(x), by_hand.mean(0), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(out, by_hand.mean(0)[0].clamp(0, 1).numpy().transpose(1, 2, 0), atol=1e-6)

    # Exactly equivariant under flips and quarter turns; the plain network is not.
    for k, f in ((0, True), (1, False), (3, True)):
        turned = _turn(img, k, f)
        assert np.abs(tta.upscale(turned) - _turn(out, k, f)).max() < 1e-5
        assert np.abs(plain.upscale(turned) - _turn(plain.upscale(img), k, f)).max() > 1e-3


def test_tta_with_tiles_alpha_and_gray(tiny_model: str) -> None:
    rgba = (RNG.random((30, 44, 4)) * 255).astype(np.uint8)
    rgba[:, :20, 3] = 0
    tiled = Upscaler(tiny_model, device="cpu", tile=16, tile_overlap=4, tta=True).upscale(rgba)
    whole = Upscaler(tiny_model, device="cpu", tile=0, tta=True).upscale(rgba)
    assert tiled.shape == whole.shape == (60, 88, 4)
    plain = Upscaler(tiny_model, device="cpu", tile=16, tile_overlap=4).upscale(rgba)
    # Tiles blend into about the whole-image answer (random weights: tiles see less context), and
    # the self-ensemble did run on them (its answer is not the plain network's).
    assert np.abs(tiled.astype(int) - whole.astype(int)).mean() < 6
    assert np.abs(tiled.astype(int) - plain.astype(int)).mean() > 1
    gray = Upscaler(tiny_model, device="cpu", tta=True).upscale(Image.fromarray(rgba[..., 0]))
    assert gray.mode == "L" and gray.size == (88, 60)


def test_auto_noise_members_keep_tta() -> None:
    auto = Upscaler("art", noise="auto", tile=0, tta=True)
    img = (RNG.random((32, 32, 3)) * 255).astype(np.uint8)
    import io

    member, choice = auto.choose_noise(Image.open(io.BytesIO(jpeg_bytes(img, 30))).quantization)
    assert choice.level == 3 and member is not auto
    assert member.tta and member.runner.__class__.__name__ == "SelfEnsembleRunner"


def test_cli_upscale_and_eval_tta(tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    img = (RNG.random((32, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(hr / "a.png")
    lr = tmp_path / "lr.png"
    Image.fromarray(img[::2, ::2]).save(lr)

    assert main(["upscale", str(lr), "-o", str(tmp_path / "plain.png"), "--model", tiny_model]) == 0
    capsys.readouterr()
    assert main(["upscale", str(lr), "-o", str(tmp_path / "tta.png"), "--model", tiny_model, "--tta"]) == 0
    assert "self-ensemble of 8" in capsys.readouterr().err
    plain, tta = (np.asarray(Image.open(tmp_path / n)) for n in ("plain.png", "tta.png"))
    assert plain.shape == tta.shape == (32, 48, 3) and not np.array_equal(plain, tta)
    expected = Upscaler(tiny_model, tta=True).upscale(Image.open(lr))
    assert np.array_equal(tta, np.asarray(expected))

    out = tmp_path / "eval.json"
    assert (
        main(["eval", "--model", tiny_model, "--hr-dir", str(hr), "--tta", "--quiet", "--json", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["method"] == "tiny+"
    assert main(["eval", "--sr-dir", str(hr), "--hr-dir", str(hr), "--scale", "2", "--tta"]) == 2
    assert "--tta runs a model" in capsys.readouterr().err
