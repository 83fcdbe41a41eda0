"""How the network spreads over CPU cores: Swin blocks in chunks of windows on worker threads.

A Swin block is token-wise except for attention inside windows, so it can run on chunks of whole
windows gathered straight from its input (one gather and one scatter per block) with every
intermediate of a chunk in cache (see ``CHUNK_TOKENS``). The chunks are independent, so on a CPU
with several threads they run side by side on a pool of workers with one intra-op thread each, in
training too (:class:`_ParallelChunks` records and back-propagates each chunk's graph on its
worker). A batch of two or more images is instead split over the workers, each running the whole
network on its share (:func:`run_batch`).

Why threads of whole chunks and not the operators' own OpenMP threads: that needs one
synchronisation per block instead of one per operator (OpenMP's fork/join on every small GEMM),
keeps the per-chunk operators efficient, and degrades gracefully when other processes compete for
the cores, where per-operator fork/join slows down by an order of magnitude.

Random draws (drop-path masks, dropout) are made once per block call and shared by its chunks, so
results do not depend on the number of threads, the chunk size or the order chunks run in.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from .windows import WindowPlan, window_plan

T = TypeVar("T")

# Tokens (summed over the batch) that a Swin block processes at a time, window by window. Small
# enough that every intermediate (qkv, the (h, N, N) scores, the MLP hidden layer) stays in cache
# and is served from the allocator's free lists: tensors of tens of MB are mmap'ed afresh on each
# call by glibc and their page faults cost more than the arithmetic on this kind of CPU. Large
# enough that the GEMMs stay efficient and the Python loop costs little.
CHUNK_TOKENS = 4096


class ChunkPool:
    """Worker threads that run whole chunks of work, each with one intra-op thread.

    Sized to ``torch.get_num_threads()`` of the calling thread (and resized when that changes).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._size = 0
        self._local = threading.local()

    def _init_worker(self) -> None:
        torch.set_num_threads(1)  # thread-local in OpenMP and MKL: the caller keeps its own count
        self._local.worker = True

    def executor(self, device: torch.device) -> ThreadPoolExecutor | None:
        """The pool, or None where chunks should run inline (accelerators, one thread, nested)."""
        threads = torch.get_num_threads()
        if device.type != "cpu" or threads < 2 or getattr(self._local, "worker", False):
            return None
        with self._lock:
            if self._executor is None or self._size != threads:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                self._executor = ThreadPoolExecutor(
                    threads, thread_name_prefix="swinir-chunk", initializer=self._init_worker
                )
                self._size = threads
            return self._executor

    @staticmethod
    def run(pool: ThreadPoolExecutor | None, fn: Callable[[int], T], count: int) -> list[T]:
        """``[fn(0), ..., fn(count - 1)]``, on the pool when given, with the caller's autograd,
        inference-mode and autocast state (thread-local in PyTorch, so not inherited by workers)."""
        if pool is None or count < 2:
            return [fn(i) for i in range(count)]
        grad = torch.is_grad_enabled()
        inference = torch.is_inference_mode_enabled()
        autocast = cpu_autocast_state()

        def call(i: int) -> T:
            with contextlib.ExitStack() as stack:
                if inference:
                    stack.enter_context(torch.inference_mode())
                stack.enter_context(torch.set_grad_enabled(grad))
                if autocast is not None:
                    stack.enter_context(torch.autocast("cpu", dtype=autocast))
                return fn(i)

        return [f.result() for f in [pool.submit(call, i) for i in range(count)]]


def cpu_autocast_state() -> torch.dtype | None:
    """The CPU autocast dtype when CPU autocast is on, else None."""
    try:
        enabled = torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu")
    except TypeError:  # torch < 2.4
        enabled = torch.is_autocast_cpu_enabled()
        dtype = torch.get_autocast_cpu_dtype()
    return dtype if enabled else None


CHUNK_POOL = ChunkPool()
# Per-thread generator for the random draws of blocks (drop-path masks, dropout seeds) while a
# worker runs part of a batch (see _BatchParallel); None: the global generator.
_RNG = threading.local()


def current_generator() -> torch.Generator | None:
    """Where the network's random draws come from on this thread (None: the global generator)."""
    return getattr(_RNG, "generator", None)


@contextlib.contextmanager
def _thread_generator(seed: int | None) -> Iterator[None]:
    _RNG.generator = None if seed is None else torch.Generator().manual_seed(seed)
    try:
        yield
    finally:
        _RNG.generator = None


# ----------------------------------------------------------------------------------------------
# One Swin block in chunks of windows
# ----------------------------------------------------------------------------------------------

# Drop-path keep masks of a block's two residual branches (attention, MLP): (B, 1, 1) or None.
Keep = tuple[Tensor | None, Tensor | None]


class ChunkedBlock(Protocol):
    """What :func:`run_block` needs from a Swin block (``swinir.model.SwinTransformerBlock``)."""

    window_size: int
    shift_size: int

    def attention_bias(self, masks: Tensor | None, dtype: torch.dtype) -> Tensor:
        """(M, h, N, N): relative-position bias plus each mask group's mask."""
        ...

    def run_chunk(self, xc: Tensor, bias: Tensor, keep: Keep, generator: torch.Generator | None) -> Tensor:
        """The block on (B, T, C) tokens of whole windows -> (B, T, C)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


def run_block(
    block: ChunkedBlock,
    x: Tensor,
    x_size: tuple[int, int],
    keep: Keep,
    seed: int | None,
    recompute: bool = False,
) -> Tensor:
    """Run ``block`` on (B, L, C) tokens of an image of ``x_size`` (multiples of the window).

    ``keep`` are the block's drop-path masks and ``seed`` its dropout seed (chunk i draws from
    ``seed + i``), drawn once by the caller. ``recompute`` keeps no activations and recomputes them
    in backward (gradient checkpointing).
    """
    height, width = x_size
    b = x.shape[0]
    plan = window_plan(height, width, block.window_size, block.shift_size, str(x.device))
    n = block.window_size * block.window_size
    pool = CHUNK_POOL.executor(x.device)
    # Windows per chunk: cache-sized, and at least one chunk per worker on small inputs.
    workers = torch.get_num_threads() if pool is not None else 1
    step = max(1, min(CHUNK_TOKENS // (b * n), -(-plan.perm.numel() // (n * workers))))
    chunks = [
        (plan.perm[w0 * n : min(end, w0 + step) * n], group)
        for first, end, group in plan.groups
        for w0 in range(first, end, step)
    ]
    call = _BlockCall(block, plan, chunks, keep, seed, pool)
    params = [p for p in block.parameters() if p.requires_grad]
    if not torch.is_grad_enabled() or not (x.requires_grad or params):
        return call.inference(x)
    if call.pool is not None and len(chunks) > 1:
        return _ParallelChunks.apply(x, call, recompute, *params)
    if recompute:
        return activation_checkpoint(call.sequential, x, use_reentrant=False)
    return call.sequential(x)


@dataclass(frozen=True, eq=False)
class _BlockCall:
    """One call of a Swin block: its chunks and the random draws shared by all of them."""

    block: ChunkedBlock
    plan: WindowPlan
    chunks: list[tuple[Tensor, int]]  # (token indices in x, mask group)
    keep: Keep
    seed: int | None  # dropout seed; chunk i draws from seed + i
    pool: ThreadPoolExecutor | None

    def bias(self, dtype: torch.dtype) -> Tensor:
        return self.block.attention_bias(self.plan.masks, dtype)

    def run(self, xc: Tensor, bias: Tensor, i: int) -> Tensor:
        gen = None
        if self.seed is not None:
            gen = torch.Generator(device=xc.device).manual_seed(self.seed + i)
        return self.block.run_chunk(xc, bias, self.keep, gen)

    def chunk(self, x: Tensor, bias: Tensor, i: int) -> Tensor:
        idx, group = self.chunks[i]
        return self.run(x.index_select(1, idx), bias[group], i)

    def inference(self, x: Tensor) -> Tensor:
        """No autograd: chunks write straight into the output (disjoint rows)."""
        out = torch.empty_like(x)
        bias = self.bias(x.dtype)

        def work(i: int) -> None:
            out.index_copy_(1, self.chunks[i][0], self.chunk(x, bias, i))

        ChunkPool.run(self.pool, work, len(self.chunks))
        return out

    def sequential(self, x: Tensor) -> Tensor:
        """With autograd, on the calling thread. One gather split into the chunks (a gather per
        chunk would cost a full-size zero fill per chunk in backward)."""
        bias = self.bias(x.dtype)
        parts = x.index_select(1, self.plan.perm).split([idx.numel() for idx, _ in self.chunks], 1)
        pieces = [
            self.run(part, bias[group], i)
            for i, (part, (_, group)) in enumerate(zip(parts, self.chunks, strict=True))
        ]
        return torch.cat(pieces, 1).index_select(1, self.plan.inv)


class _ParallelChunks(torch.autograd.Function):
    """A Swin block whose chunks record, and back-propagate through, their own graphs on the
    worker pool. With ``recompute`` nothing is kept from the forward pass: each chunk is
    recomputed (with the same random draws) right before its backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, call: _BlockCall, recompute: bool, *params: Tensor) -> Tensor:
        ctx.call, ctx.recompute, ctx.num_params = call, recompute, len(params)
        ctx.save_for_backward(x)

        bias = call.bias(x.dtype) if recompute else None  # built here: workers share the cache

        def work(i: int) -> tuple[Tensor | None, Tensor]:
            if bias is not None:
                return None, call.chunk(x, bias, i)
            return _ParallelChunks._record(x, call, i)

        ctx.graphs = ChunkPool.run(call.pool, work, len(call.chunks))
        out = torch.cat([y.detach() for _, y in ctx.graphs], 1).index_select(1, call.plan.inv)
        if recompute:
            ctx.graphs = None
        return out

    @staticmethod
    def _record(x: Tensor, call: _BlockCall, i: int) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            xc = x.detach().index_select(1, call.chunks[i][0]).requires_grad_()
            bias = call.bias(x.dtype)[call.chunks[i][1]]
            return xc, call.run(xc, bias, i)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        call: _BlockCall = ctx.call
        (x,) = ctx.saved_tensors
        params = [p for p in call.block.parameters() if p.requires_grad]

        def work(i: int) -> Sequence[Tensor | None]:
            xc, y = ctx.graphs[i] if ctx.graphs is not None else _ParallelChunks._record(x, call, i)
            g = grad_out.index_select(1, call.chunks[i][0])
            return torch.autograd.grad(y, [xc, *params], g, allow_unused=True)

        grads = ChunkPool.run(call.pool, work, len(call.chunks))
        ctx.graphs = None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            for (idx, _), g in zip(call.chunks, grads, strict=True):
                grad_x.index_copy_(1, idx, g[0])
        grad_params: list[Tensor | None] = []
        for j in range(len(params)):
            parts = [g[1 + j] for g in grads if g[1 + j] is not None]
            grad_params.append(torch.stack(parts).sum(0) if parts else None)
        return (grad_x, None, None, *grad_params)


# ----------------------------------------------------------------------------------------------
# A batch split over the workers
# ----------------------------------------------------------------------------------------------


def run_batch(
    forward: Callable[[Tensor], Tensor], module: nn.Module, x: Tensor, pool: ThreadPoolExecutor
) -> Tensor:
    """``forward(x)`` with the (B >= 2) batch split over the pool's workers, each running
    ``forward`` (the whole network, whose parameters are ``module``'s) on its share."""
    params = [p for p in module.parameters() if p.requires_grad]
    if torch.is_grad_enabled() and (x.requires_grad or params):
        return _BatchParallel.apply(x, forward, module.training, pool, *params)
    parts = x.split(-(-x.shape[0] // torch.get_num_threads()))
    return torch.cat(ChunkPool.run(pool, lambda i: forward(parts[i]), len(parts)))


class _BatchParallel(torch.autograd.Function):
    """Training on a batch: each worker runs the whole network, forward then backward, on its
    share of the images with one intra-op thread; the parameter gradients are summed. No
    operator synchronises the threads, so the speed-up holds on a loaded machine too. Random
    draws come from per-share generators seeded from the global one (reproducible under
    ``torch.manual_seed`` for a given thread count)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        forward: Callable[[Tensor], Tensor],
        training: bool,
        pool: ThreadPoolExecutor,
        *params: Tensor,
    ) -> Tensor:
        parts = x.split(-(-x.shape[0] // torch.get_num_threads()))
        seeds = torch.randint(0, 2**62, (len(parts),)).tolist() if training else None

        def work(i: int) -> tuple[Tensor, Tensor]:
            with _thread_generator(None if seeds is None else seeds[i]), torch.enable_grad():
                xi = parts[i].detach().requires_grad_(ctx.needs_input_grad[0])
                return xi, forward(xi)

        ctx.graphs = ChunkPool.run(pool, work, len(parts))
        ctx.pool, ctx.params = pool, params
        return torch.cat([y.detach() for _, y in ctx.graphs])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        graphs, params = ctx.graphs, ctx.params
        grads_out = grad_out.split([y.shape[0] for _, y in graphs])
        want_x = ctx.needs_input_grad[0]

        def work(i: int) -> Sequence[Tensor | None]:
            xi, yi = graphs[i]
            inputs = [xi, *params] if want_x else list(params)
            return torch.autograd.grad(yi, inputs, grads_out[i], allow_unused=True)

        grads = ChunkPool.run(ctx.pool, work, len(graphs))
        ctx.graphs = None
        offset = 1 if want_x else 0
        grad_x = torch.cat([g[0] for g in grads]) if want_x else None
        grad_params: list[Tensor | None] = []
        for j in range(len(params)):
            parts = [g[offset + j] for g in grads if g[offset + j] is not None]
            grad_params.append(functools.reduce(torch.add, parts) if parts else None)
        return (grad_x, None, None, None, *grad_params)
