"""Refusing, before any loading, a device that this torch cannot use."""

from __future__ import annotations

import importlib.util

import torch

from ._config import ModelConfig as Config
from ._errors import ModelLoadError

_INSTALL = "see https://pytorch.org/get-started/locally/"
_BUILDS = {
    "cuda": "a CUDA (or ROCm) build of torch, such as "
    "`pip install torch --index-url https://download.pytorch.org/whl/cu128`",
    "mps": "torch for macOS on Apple silicon (the build from PyPI)",
    "xpu": "an XPU build of torch, such as "
    "`pip install torch --index-url https://download.pytorch.org/whl/xpu`",
}
_PLANS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})


def _built(kind: str) -> bool:
    """Whether this torch was built for devices of ``kind``."""
    if kind == "cuda":
        return torch.version.cuda is not None or torch.version.hip is not None
    if kind == "mps":
        return torch.backends.mps.is_built()
    return True  # xpu and others: torch's own availability check tells


def _visible(kind: str) -> int:
    """How many devices of ``kind`` this torch sees (1 for a device without indices)."""
    module = getattr(torch, kind, None)
    if module is None or not module.is_available():
        return 0
    count = getattr(module, "device_count", None)
    return int(count()) if callable(count) else 1


def check_device(config: Config) -> None:
    """Refuse a ``device`` this torch lacks, or a ``device_map`` without accelerate.

    Raises:
        ModelLoadError: one line naming the device, this torch and the build it needs.
    """
    if config.base_url is not None:
        return
    if config.device_map is not None and importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError(
            f"device_map {config.device_map!r} needs accelerate: `pip install accelerate`, "
            "or give device instead."
        )
    name = config.device
    if name is None and isinstance(config.device_map, str) and config.device_map not in _PLANS:
        name = config.device_map
    if name is None:
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ModelLoadError(
            f"device {name!r} is not a torch device: give one such as 'cpu', 'cuda:0' or 'mps'."
        ) from None
    if device.type in {"cpu", "meta"}:
        return
    torch_build = f"this torch ({torch.__version__})"
    needed = _BUILDS.get(device.type, f"a torch build with {device.type} support ({_INSTALL})")
    if not _built(device.type):
        raise ModelLoadError(
            f"device {name!r} needs {needed}; {torch_build} has no {device.type} support."
        )
    visible = _visible(device.type)
    if visible == 0:
        raise ModelLoadError(
            f"device {name!r}: {torch_build} sees no {device.type} device (is the driver "
            f"installed, the device visible to this process?); otherwise install {needed}."
        )
    if device.index is not None and device.index >= visible:
        raise ModelLoadError(
            f"device {name!r}: {torch_build} sees {visible} {device.type} device(s), "
            f"{device.type}:0 to {device.type}:{visible - 1}."
        )
