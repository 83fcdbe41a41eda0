"""The fast paths of the network against a straightforward implementation of the published algorithm.

The network runs each Swin block on chunks of windows grouped by mask, on worker threads, with
cached biases; these tests hold it to a plain roll + partition + full-mask implementation written
here from the paper, in eval and train modes, with gradients, and check that threads, chunk
sizes and gradient checkpointing change nothing.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import swinir.cpu_parallel as P
import swinir.model as M
import swinir.windows as W
from swinir.model import SwinIR, SwinIRConfig, preset


def _cfg(name: str = "lightweight_x2", **overrides: object) -> SwinIRConfig:
    base = preset(name).to_dict()
    heads = base["num_heads"][0]
    small = {"depths": [2, 2], "num_heads": [heads, heads], "embed_dim": heads * 4}
    return SwinIRConfig.from_dict({**base, **small, **overrides})


# ----------------------------------------------------------------------------------------------
# Reference: the published algorithm, written plainly (eval mode, no dropout).
# ----------------------------------------------------------------------------------------------


def _ref_block(blk: M.SwinTransformerBlock, x: Tensor, size: tuple[int, int]) -> Tensor:
    h, w = size
    b, _, c = x.shape
    ws, shift = blk.window_size, blk.shift_size
    attn = blk.attn
    heads, d = attn.num_heads, c // attn.num_heads
    y = blk.norm1(x).view(b, h, w, c)
    if shift:
        y = torch.roll(y, (-shift, -shift), (1, 2))
    win = y.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
    qkv = attn.qkv(win).reshape(win.shape[0], ws * ws, 3, heads, d).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * d**-0.5, qkv[1], qkv[2]
    scores = q @ k.transpose(-2, -1) + attn.relative_position_bias().unsqueeze(0)
    if shift:
        mask = W.shifted_window_mask(h, w, ws, shift)
        nw = mask.shape[0]
        scores = (scores.view(b, nw, heads, ws * ws, ws * ws) + mask[None, :, None]).flatten(0, 1)
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(-1, ws * ws, c)
    out = attn.proj(out).view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    if shift:
        out = torch.roll(out, (shift, shift), (1, 2))
    x = x + blk.drop_path(out.reshape(b, h * w, c))
    return x + blk.drop_path(blk.mlp.fc2(blk.mlp.act(blk.mlp.fc1(blk.norm2(x)))))


def _reference(model: SwinIR, x: Tensor) -> Tensor:
    """Whole-network forward of the official design (pixelshuffle(direct) upsamplers)."""
    h, w = x.shape[-2:]
    x = model.pad_to_window(x)
    x = (x - model.mean) * model.img_range
    first = model.conv_first(x)
    size = (first.shape[2], first.shape[3])
    b, c = first.shape[:2]
    t = first.flatten(2).transpose(1, 2)
    t = model.patch_embed.norm(t) if model.patch_embed.norm is not None else t
    for layer in model.layers:
        y = t
        for blk in layer.residual_group.blocks:
            y = _ref_block(blk, y, size)
        y = layer.conv(y.transpose(1, 2).reshape(b, c, *size))
        t = y.flatten(2).transpose(1, 2) + t
    feat = model.norm(t).transpose(1, 2).reshape(b, c, *size)
    x = model.conv_after_body(feat) + first
    if model.upsampler == "pixelshuffle":
        x = model.conv_last(model.upsample(model.conv_before_upsample(x)))
    else:
        x = model.upsample(x)
    x = x / model.img_range + model.mean
    return x[..., : h * model.upscale, : w * model.upscale]


def _model(cfg: SwinIRConfig, seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    model = SwinIR(cfg)
    # Larger weights than the training init, so that every part of the blocks (tables, masks,
    # dropout) shows clearly in outputs and gradients.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, M.WindowAttention):
                m.relative_position_bias_table.normal_(0, 0.5)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.3)
    return model


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few windows, so that small images exercise many chunks and every mask group."""
    monkeypatch.setattr(P, "CHUNK_TOKENS", 100)


@pytest.fixture
def threads():
    """Run with a given intra-op thread count, restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["lightweight_x2", "seed_x2"])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_eval_matches_reference(name: str, nthreads: int, small_chunks: None, threads) -> None:
    threads(nthreads)
    model = _model(_cfg(name, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)).eval()
    x = torch.rand(2, 3, 21, 30)  # padded to whole windows; several windows per row and column
    with torch.no_grad():
        expected = _reference(model, x)
        got = model(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-5


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients_match_reference(nthreads: int, checkpointing: bool, small_chunks: None, threads) -> None:
    threads(nthreads)
    cfg = _cfg("seed_x2", drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)
    fast, ref = _model(cfg).train(), _model(cfg).train()
    fast.set_grad_checkpointing(checkpointing)
    x = torch.rand(2, 3, 16, 12, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    target = torch.rand(2, 3, 32, 24)
    F.l1_loss(fast(x), target).backward()
    F.l1_loss(_reference(ref, x_ref), target).backward()
    assert torch.allclose(x.grad, x_ref.grad, rtol=1e-3, atol=1e-5 * x_ref.grad.abs().max())
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and q.grad.abs().max() > 0, name
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5 * q.grad.abs().max()), name


def _layer(drop: float, drop_path: float) -> M.BasicLayer:
    torch.manual_seed(0)
    layer = M.BasicLayer(12, 2, 3, 4, 4.0, True, drop, drop, [drop_path, drop_path]).train()
    with torch.no_grad():
        for m in layer.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.3)
    return layer


def _train_step(layer: M.BasicLayer, x: Tensor, seed: int) -> tuple[Tensor, dict[str, Tensor]]:
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out = layer(x, (12, 16))
    out.square().mean().backward()
    return out.detach(), {"x": x.grad, **{n: p.grad.clone() for n, p in layer.named_parameters()}}


def test_dropout_and_drop_path_do_not_depend_on_threads_or_checkpointing(small_chunks: None, threads) -> None:
    """Training is reproducible under ``torch.manual_seed`` whatever the thread count, and
    checkpointing recomputes exactly the same dropout masks."""
    layer = _layer(drop=0.2, drop_path=0.3)
    x = torch.randn(3, 12 * 16, 12)
    results = []
    for nthreads, checkpointing in [(1, False), (2, False), (2, True), (1, True)]:
        threads(nthreads)
        layer.grad_checkpointing = checkpointing
        results.append(_train_step(layer, x, seed=7))
    out0, grads0 = results[0]
    for out, grads in results[1:]:
        assert torch.allclose(out, out0, atol=1e-5)
        for name, g in grads.items():
            assert torch.allclose(g, grads0[name], atol=1e-6, rtol=1e-4), name
    # The masks are random: another seed gives other outputs and gradients.
    threads(2)
    out, grads = _train_step(layer, x, seed=8)
    assert (out - out0).abs().max() > 0.1
    assert (grads["x"] - grads0["x"]).abs().max() > 1e-4


def test_drop_path_drops_whole_samples_across_chunks(small_chunks: None) -> None:
    blk = M.SwinTransformerBlock(8, 2, 4, 2, 2.0, True, 0.0, 0.0, drop_path=0.5).train()
    x = torch.rand(16, 64, 8)
    torch.manual_seed(3)
    with torch.no_grad():
        y = blk(x, (8, 8))
    # A dropped sample passes through both branches unchanged on every token, in every chunk.
    unchanged = (y - x).abs().amax(dim=(1, 2)) == 0
    assert 0 < int(unchanged.sum()) < 16


@pytest.mark.parametrize("size", [(4, 4), (4, 12), (12, 4), (8, 8), (16, 24)])
def test_window_plan_groups_share_their_mask(size: tuple[int, int]) -> None:
    h, w = size
    ws, shift = 4, 2
    plan = W.window_plan(h, w, ws, shift)
    full = W.shifted_window_mask(h, w, ws, shift)  # (nW, N, N), raster window order
    order = W.window_token_order(h, w, ws, shift).view(-1, ws * ws)
    windows = {tuple(order[i].tolist()): i for i in range(order.shape[0])}
    perm = plan.perm.view(-1, ws * ws)
    seen = 0
    for first, end, group in plan.groups:
        for i in range(first, end):
            assert torch.equal(full[windows[tuple(perm[i].tolist())]], plan.masks[group])
            seen += 1
    assert seen == order.shape[0]
    assert torch.equal(plan.perm[plan.inv], torch.arange(h * w))
    assert W.window_plan(h, w, ws, 0).masks is None


def test_bias_cache_follows_the_table(threads) -> None:
    threads(2)
    model = _model(_cfg()).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before = model(x)
        table = model.layers[0].residual_group.blocks[1].attn.relative_position_bias_table
        table.add_(1.0)  # in place: the cached bias must not be reused
        after = model(x)
        assert torch.allclose(after, _reference(model, x), atol=1e-5)
        assert not torch.allclose(before, after)
        fresh = _model(_cfg(), seed=1).eval()
        model.load_state_dict(fresh.state_dict())
        assert torch.allclose(model(x), fresh(x), atol=1e-6)


def test_inference_mode_and_grad_mode_without_grads(threads) -> None:
    threads(2)
    model = _model(_cfg()).eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():
        assert torch.allclose(model(x), expected, atol=1e-6)
    for p in model.parameters():
        p.requires_grad_(False)
    out = model(x)  # grad mode on, nothing to differentiate
    assert out.grad_fn is None and torch.allclose(out, expected, atol=1e-6)


def test_training_after_inference_mode_on_the_same_size(threads) -> None:
    """Size tables and biases cached under inference mode must still serve autograd later."""
    threads(2)
    model = _model(_cfg())
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        model.eval()(x)
    model.train()(x).mean().backward()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        model(x)
    model(x.requires_grad_()).mean().backward()  # frozen weights, gradient for the input only
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_batches_split_over_workers_match_one_thread(threads) -> None:
    """A batch runs as shares on the worker threads (forward and backward): same outputs and
    gradients as one thread; with dropout, reproducible under torch.manual_seed."""
    cfg = _cfg("seed_x2", drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)
    model = _model(cfg).train()
    x = torch.rand(5, 3, 12, 16)
    results = []
    for nthreads in (1, 2):
        threads(nthreads)
        model.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        out = model(xi)
        out.square().mean().backward()
        results.append((out.detach(), xi.grad, [p.grad.clone() for p in model.parameters()]))
        with torch.no_grad():
            assert torch.allclose(model.eval()(x), out.detach(), atol=1e-5)
        model.train()
    (o1, gx1, g1), (o2, gx2, g2) = results
    assert torch.allclose(o1, o2, atol=1e-5) and torch.allclose(gx1, gx2, atol=1e-7, rtol=1e-4)
    for a, b in zip(g1, g2, strict=True):
        assert torch.allclose(a, b, atol=1e-6 * a.abs().max(), rtol=1e-4)

    threads(2)
    noisy = _model(_cfg("seed_x2", drop_rate=0.2, attn_drop_rate=0.2, drop_path_rate=0.3)).train()
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(noisy(x).detach())
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


def test_dropout_masks_have_the_right_rate_and_scale() -> None:
    x = torch.ones(400, 500)
    for p in (0.1, 0.5):
        y = M._dropout(x, p, torch.Generator().manual_seed(0))
        kept = y != 0
        assert abs(kept.float().mean().item() - (1 - p)) < 0.005
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4)
        assert abs(y.mean().item() - 1.0) < 0.01  # unbiased
    same = [M._dropout(x, 0.2, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*same)
    assert M._dropout(x, 0.0, None) is x
