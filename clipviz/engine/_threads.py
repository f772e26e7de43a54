"""How embed_images shares the CPU between torch's threads and the decoding threads.

A fixed rule cannot be right for every model: a large model (ViT-B-32) spends ~95% of its
time in the forward pass and wants every core for torch; a tiny one on large JPEGs is bound
by decoding. So the run starts with torch at its default thread count and one decoder, times
the decoding (CPU seconds per image, in the decoding threads) and a forward pass, and then
picks the split with the shortest predicted time per image.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

__all__ = ["CpuPlan", "choose_plan", "DecodeLimiter"]


@dataclass(frozen=True)
class CpuPlan:
    """Torch intra-op threads and concurrently running decoders."""

    torch_threads: int
    decoders: int
    predicted_s_per_image: float


def choose_plan(decode_s: float, forward_s: float, cores: int, torch_default: int) -> CpuPlan:
    """The split of ``cores`` with the least predicted wall time per image.

    Parameters
    ----------
    decode_s : float
        CPU seconds to read, decode and preprocess one image (one thread).
    forward_s : float
        Wall seconds per image of the forward pass at ``torch_default`` threads.
    cores, torch_default : int
        CPUs available; torch's default thread count.

    Notes
    -----
    *Shared*: torch keeps its default threads and decoders run beside them. A decoder that
    takes a core stalls torch's whole OpenMP team at its next barrier, so decoding is counted
    as if it ran between forward passes: an image costs ``forward + decode``. *Split*: ``k``
    cores decode and ``cores - k`` run torch (assumed to scale linearly, which favours the
    split); the slower of the two stages sets the pace.
    """
    cores, torch_default = max(1, cores), max(1, torch_default)
    need = max(1, math.ceil(decode_s / max(forward_s, 1e-9)))
    best = CpuPlan(torch_default, min(need, cores), forward_s + decode_s)
    for k in range(1, cores):
        t = min(torch_default, cores - k)
        per_image = max(forward_s * torch_default / t, decode_s / k)
        if per_image < best.predicted_s_per_image:
            best = CpuPlan(t, k, per_image)
    return best


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
