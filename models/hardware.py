"""What the hardware can do: a device's name and its peak FLOP/s, for model FLOPs utilization (MFU).

MFU is the training FLOPs the sweep counts (C = tokens x flops_per_token, models/config.py) per
second over the device's dense peak at the run's precision: bf16 tensor cores under bf16 autocast,
IEEE fp32 otherwise (no TF32: models/train.py keeps an fp32 run exact). Peaks are the vendors' dense
(no sparsity) numbers; a device missing from the table, or a CPU, has no MFU unless the config sets
train.peak_flops.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

# (pattern matched against the device name, dense bf16 FLOP/s, fp32 FLOP/s). Most specific first:
# "H100 PCIe" before "H100".
PEAK_FLOPS: tuple[tuple[str, float, float], ...] = (
    (r"H100 PCIe", 756e12, 51e12),
    (r"H100 NVL", 835e12, 60e12),
    (r"GH200|H200|H100", 989e12, 67e12),  # SXM
    (r"A100", 312e12, 19.5e12),
    (r"L40S", 362e12, 91.6e12),
    (r"\bL4\b", 121e12, 30.3e12),
    (r"\bA10\b", 125e12, 31.2e12),
)


def device_name(device: torch.device) -> str:
    """The GPU's name as the driver reports it (e.g. NVIDIA H100 80GB HBM3), or the CPU's model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    return device.type


def peak_flops(name: str, precision: str, override: float = 0.0) -> float | None:
    """The device's dense peak FLOP/s at `precision` (bf16 | fp32); `override` (> 0) wins. None: unknown."""
    if override > 0:
        return override
    for pattern, bf16, fp32 in PEAK_FLOPS:
        if re.search(pattern, name):
            return bf16 if precision == "bf16" else fp32
    return None
