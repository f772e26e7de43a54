"""Device and precision for load_model: "auto" resolved, precisions checked with clear errors."""

from __future__ import annotations

from typing import Any

from clipviz.models._errors import DeviceError, PrecisionError

__all__ = ["PRECISIONS", "can_defer", "checked_device", "check_precision", "resolve_device"]

PRECISIONS = ("fp32", "fp16", "bf16")


def can_defer(device: Any, precision: str) -> bool:
    """Device and precision whose checks need no torch and cannot fail later (no GPU needed)."""
    return (str(device) in ("cpu", "auto") and precision == "fp32") or (
        str(device) == "cpu" and precision == "bf16"
    )


def checked_device(device: Any, precision: str) -> Any:
    dev = resolve_device(device)
    check_precision(precision, dev)
    return dev


def resolve_device(device: str | Any = "auto") -> Any:
    """``"auto"`` -> CUDA if available, else MPS, else CPU; other values -> ``torch.device``."""
    import torch

    if str(device) != "auto":
        try:
            return torch.device(device)
        except RuntimeError as err:
            raise DeviceError(
                f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'"
            ) from err
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_precision(precision: str, dev: Any) -> None:
    import torch

    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    if precision == "fp16" and dev.type == "cpu":
        raise PrecisionError(
            "precision='fp16' needs a GPU (CUDA or MPS) but the device is the CPU; "
            "use precision='fp32' (or 'bf16', which CPUs can run)"
        )
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise PrecisionError(
            f"this GPU ({torch.cuda.get_device_name(dev)}) does not support bf16; "
            "use precision='fp16' or 'fp32'"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device='cuda' but no CUDA GPU is available; use device='auto' or 'cpu'")
