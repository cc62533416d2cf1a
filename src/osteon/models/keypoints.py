"""Heat maps for landmarks: Gaussian targets and sub-pixel decoding (pure torch).

Coordinates are continuous pixel coordinates of the model input: pixel ``(i, j)`` (row, column) spans
``[j, j + 1) × [i, i + 1)`` and its centre is ``(j + 0.5, i + 0.5)`` as ``(x, y)``. A heat-map model is any
segmentation network with one output channel per landmark (``osteon.models.segmentation``: a U-Net decoder
from segmentation_models_pytorch or MONAI); its logits are read as one spatial softmax per landmark.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    return ys, xs


def gaussian_targets(points: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """``(B, K, H, W)`` normalised Gaussians (each map sums to 1) centred on ``points`` ``(B, K, 2)`` (x, y)."""
    ys, xs = _grid(height, width, points.device)
    dx = xs[None, None, None, :] - points[..., 0, None, None]
    dy = ys[None, None, :, None] - points[..., 1, None, None]
    logits = -(dx**2 + dy**2) / (2 * sigma**2)
    b, k = points.shape[:2]
    return torch.softmax(logits.reshape(b, k, -1), dim=-1).reshape(b, k, height, width)


def heatmap_loss(logits: torch.Tensor, points: torch.Tensor, visible: torch.Tensor, sigma: float) -> torch.Tensor:
    """Cross-entropy between each landmark's spatial softmax and its Gaussian target, over visible points only.

    Args:
        logits: ``(B, K, H, W)``.
        points: ``(B, K, 2)`` input-space ``(x, y)``; ignored where not ``visible``.
        visible: ``(B, K)`` bool.
        sigma: Gaussian width in input pixels.
    """
    b, k, h, w = logits.shape
    safe = torch.where(visible[..., None], points, torch.zeros_like(points))
    target = gaussian_targets(safe.float(), h, w, sigma)
    log_p = F.log_softmax(logits.float().reshape(b, k, -1), dim=-1)
    per_point = -(target.reshape(b, k, -1) * log_p).sum(-1)
    weight = visible.float()
    return (per_point * weight).sum() / weight.sum().clamp_min(1.0)


def decode_heatmaps(logits: torch.Tensor, *, radius: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sub-pixel points from heat-map logits: the arg-max, refined by a parabola through the log-probabilities of
    its neighbours along x and along y (exact for a Gaussian peak, whose log is a parabola).

    Args:
        logits: ``(B, K, H, W)``.
        radius: Half-size of the window whose probability mass is the confidence (pixels).

    Returns:
        ``points`` ``(B, K, 2)`` input-space ``(x, y)``; ``confidence`` ``(B, K)`` in [0, 1] (softmax mass within
        ``radius`` of the peak: 1 = one sharp peak); ``probabilities`` ``(B, K, H, W)`` (the spatial softmax).
    """
    b, k, h, w = logits.shape
    log_p = torch.log_softmax(logits.float().reshape(b, k, -1), dim=-1).reshape(b, k, h, w)
    prob = log_p.exp()
    flat = log_p.reshape(b, k, -1).argmax(-1)
    py, px = flat // w, flat % w

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return log_p.reshape(b, k, -1).gather(-1, (y.clamp(0, h - 1) * w + x.clamp(0, w - 1))[..., None])[..., 0]

    def offset(minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        curvature = minus - 2 * centre + plus
        shift = 0.5 * (minus - plus) / torch.where(curvature < 0, curvature, torch.full_like(curvature, -1.0))
        return torch.where(inside & (curvature < 0), shift.clamp(-1, 1), torch.zeros_like(shift))

    centre = at(py, px)
    dx = offset(at(py, px - 1), centre, at(py, px + 1), (px > 0) & (px < w - 1))
    dy = offset(at(py - 1, px), centre, at(py + 1, px), (py > 0) & (py < h - 1))
    points = torch.stack([px.float() + 0.5 + dx, py.float() + 0.5 + dy], dim=-1)
    ys = torch.arange(h, device=logits.device)
    xs = torch.arange(w, device=logits.device)
    window = ((ys[None, None, :, None] - py[..., None, None]).abs() <= radius) & (
        (xs[None, None, None, :] - px[..., None, None]).abs() <= radius
    )
    confidence = (prob * window).sum((-2, -1))
    return points, confidence, prob
