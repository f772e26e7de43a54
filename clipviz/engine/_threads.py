"""How embed_images shares the CPU between torch's threads and the decoding threads.

A fixed rule cannot be right for every model: a large model (ViT-B-32) spends ~95% of its
time in the forward pass and wants every core for torch; a tiny one on large JPEGs spends as
long decoding as encoding, and torch's threads scale poorly on its small tensors. So the run
starts with torch at its default thread count and one decoder, times the decoding (CPU
seconds per image, in the decoding threads), a forward pass at the default threads and one at
a single thread, and then picks the plan with the shortest predicted time per image.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["CpuPlan", "choose_plan", "CpuTuner", "DecodeLimiter", "cores"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpuPlan:
    """Torch intra-op threads, concurrently running decoders and concurrent forward passes."""

    torch_threads: int
    decoders: int
    predicted_s_per_image: float
    forwarders: int = 1


def choose_plan(
    decode_s: float,
    forward_s: float,
    cores: int,
    torch_default: int,
    forward_1_s: float | None = None,
) -> CpuPlan:
    """The split of ``cores`` with the least predicted wall time per image.

    Parameters
    ----------
    decode_s : float
        CPU seconds to read, decode and preprocess one image (one thread).
    forward_s : float
        Wall seconds per image of the forward pass at ``torch_default`` threads.
    cores, torch_default : int
        CPUs available; torch's default thread count.
    forward_1_s : float, optional
        CPU seconds per image of the forward pass at one torch thread; when given, the
        *parallel* plan is considered too.

    Notes
    -----
    *Shared*: torch keeps its default threads and decoders run beside them. A decoder that
    takes a core stalls torch's whole OpenMP team at its next barrier, so decoding is counted
    as if it ran between forward passes: an image costs ``forward + decode``. *Split*: ``k``
    cores decode and ``cores - k`` run torch (assumed to scale linearly, which favours the
    split); the slower of the two stages sets the pace. *Parallel*: torch runs one thread
    per forward pass and ``cores`` batches are encoded at once, beside ``cores`` decoders;
    nothing waits at a barrier, so the cores share all the work: an image costs
    ``(forward_1 + decode) / cores``.
    """
    cores, torch_default = max(1, cores), max(1, torch_default)
    need = max(1, math.ceil(decode_s / max(forward_s, 1e-9)))
    best = CpuPlan(torch_default, min(need, cores), forward_s + decode_s)
    for k in range(1, cores):
        t = min(torch_default, cores - k)
        per_image = max(forward_s * torch_default / t, decode_s / k)
        if per_image < best.predicted_s_per_image:
            best = CpuPlan(t, k, per_image)
    if forward_1_s is not None and cores > 1:
        per_image = (forward_1_s + decode_s) / cores
        if per_image < best.predicted_s_per_image:
            best = CpuPlan(1, cores, per_image, forwarders=cores)
    return best


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 2


class CpuTuner:
    """Owns the thread settings of one run: torch's threads, the decoders allowed to run and
    the forward passes run at once.

    On the CPU with ``num_workers=None`` the run starts as the *parallel* plan would (a torch
    thread per forward pass, a pass and a decoder per core), so the probing costs little
    throughput: the first two passes are timed at one thread (CPU time of their thread; the
    lower one counts, the first pays one-off setup costs), the third alone at torch's default
    threads (wall), and then :func:`choose_plan` picks from the measured costs. With
    ``num_workers`` given, torch gets the cores the decoders leave. Restores torch's threads
    on exit.
    """

    def __init__(self, device: Any, num_workers: int | None, default_workers: int):
        self.cpu = getattr(device, "type", str(device)) == "cpu"
        self.adaptive = self.cpu and num_workers is None
        self.cores = cores()
        self.pool_size = self.cores if self.adaptive else (num_workers or default_workers)
        self.limiter = DecodeLimiter(self.pool_size)
        self.plan: CpuPlan | None = None
        self._decode_s: list[float] = []
        self._forward_1_s: list[float] = []
        self._submitted = 0
        self._before = 1
        self._fixed: int | None = None  # torch threads when not adaptive

    @property
    def forwarders(self) -> int:
        """Forward passes that may run at once (for the next one to be submitted)."""
        if self.plan is not None:
            return self.plan.forwarders
        return self.cores if self.adaptive and self._submitted < 2 else 1

    def __enter__(self) -> CpuTuner:
        if self.cpu:
            import torch

            self._before = torch.get_num_threads()
            if not self.adaptive:  # explicit decoders: torch gets the cores they leave
                self._fixed = max(1, min(self._before, self.cores - self.pool_size))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cpu:
            import torch

            torch.set_num_threads(self._before)

    def threads_for_next_forward(self) -> int | None:
        """Torch threads for the forward pass being submitted (None: leave them as they are).
        Call it once per pass, after :attr:`forwarders` passes have been let through."""
        if not self.cpu:
            return None
        if not self.adaptive:
            return self._fixed
        if self.plan is not None:
            return self.plan.torch_threads
        self._submitted += 1
        return 1 if self._submitted <= 2 else self._before

    def decoded(self, cpu_s: float) -> None:
        if self.adaptive and self.plan is None:
            self._decode_s.append(cpu_s)  # list.append is atomic: safe from the workers

    def forward_done(self, n: int, threads: int | None, wall_s: float, cpu_s: float) -> None:
        """Record a finished forward pass of ``n`` images run at ``threads`` torch threads."""
        if not self.adaptive or self.plan is not None or n < 1:
            return
        probes = len(self._forward_1_s)
        if probes < 2:  # one thread: the CPU time of its thread is its whole cost
            self._forward_1_s.append(cpu_s / n)
            if probes == 0 or self._before > 1:
                return
        forward_1 = min(self._forward_1_s)
        forward_s = wall_s / n if self._before > 1 else forward_1
        decode_s = statistics.median(self._decode_s) if self._decode_s else 0.0
        self.plan = choose_plan(decode_s, forward_s, self.cores, self._before, forward_1)
        self.limiter.resize(self.plan.decoders)
        _log.debug(
            "cpu plan %s from decode %.3g s, forward %.3g s (default threads), %.3g s (1 thread)",
            self.plan, decode_s, forward_s, forward_1,
        )  # fmt: skip


class DecodeLimiter:
    """A semaphore whose size can change while threads wait on it (the decoder count)."""

    def __init__(self, slots: int):
        self._cond = threading.Condition()
        self._slots = max(1, slots)
        self._busy = 0

    def resize(self, slots: int) -> None:
        with self._cond:
            self._slots = max(1, slots)
            self._cond.notify_all()

    def __enter__(self) -> DecodeLimiter:
        with self._cond:
            self._cond.wait_for(lambda: self._busy < self._slots)
            self._busy += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()
