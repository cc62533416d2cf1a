"""The plain hand-written smp U-Net loop that a user would write instead of Osteon (the benchmark's baseline).

``segmentation_models_pytorch.Unet("resnet18", encoder_weights=None)``, Dice + BCE, AdamW + OneCycleLR, random
horizontal and vertical flips, whole images stretched to ``size``×``size`` px, batch 8. It trains until a
wall-clock budget is spent: a short timing probe sets the number of optimiser steps the budget allows, the
one-cycle schedule is planned over them, and the epoch with the best validation Dice is kept. No Osteon code.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HandResult:
    """The trained model and what the loop did."""

    model: nn.Module
    steps: int
    planned_steps: int
    epochs: int
    best_epoch: int
    best_val_dice: float
    train_seconds: float
    seconds_per_step_probe: float
    history: list[dict[str, float]] = field(default_factory=list)


def make_model(in_channels: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, in_channels=in_channels, classes=1)


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice over the batch + BCE."""
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = 1 - (2 * inter + 1) / (prob.sum() + target.sum() + 1)
    return dice + F.binary_cross_entropy_with_logits(logits, target)


def _normalise(x: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` → float, per-image zero mean / unit std."""
    t = torch.from_numpy(x).float() / 255.0
    mean = t.mean(dim=(1, 2, 3), keepdim=True)
    std = t.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (t - mean) / std


def _batch(images: np.ndarray, masks: np.ndarray, idx: np.ndarray, rng: np.random.Generator):
    x = _normalise(images[idx])
    y = torch.from_numpy(masks[idx][:, None].astype(np.float32))
    for i in range(len(idx)):  # random flips, jointly
        if rng.random() < 0.5:
            x[i], y[i] = x[i].flip(-1), y[i].flip(-1)
        if rng.random() < 0.5:
            x[i], y[i] = x[i].flip(-2), y[i].flip(-2)
    return x, y


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """``(N, H, W)`` foreground probabilities of uint8 ``(N, C, H, W)`` images."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        out.append(torch.sigmoid(model(_normalise(images[start : start + batch_size])))[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros((0, *images.shape[2:]), np.float32)


def mean_dice(prob: np.ndarray, masks: np.ndarray) -> float:
    """Mean per-image Dice at p > 0.5 (both empty: 1)."""
    scores = []
    for p, m in zip(prob > 0.5, masks.astype(bool), strict=True):
        denom = p.sum() + m.sum()
        scores.append(1.0 if denom == 0 else 2.0 * (p & m).sum() / denom)
    return float(np.mean(scores))


def _one_cycle(opt: torch.optim.Optimizer, lr: float, total: int, *, done: int):
    """A OneCycleLR over ``total`` steps, fast-forwarded past the ``done`` steps already taken."""
    import warnings

    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for _ in range(done):
            sched.step()
    return sched


def train_hand_unet(
    train_images: np.ndarray,
    train_masks: np.ndarray,
    val_images: np.ndarray,
    val_masks: np.ndarray,
    *,
    budget_s: float,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    log=print,
) -> HandResult:
    """Train until ``budget_s`` seconds of wall clock are spent (validation included), keep the best val Dice.

    Args:
        train_images, val_images: uint8 ``(N, C, S, S)``.
        train_masks, val_masks: ``(N, S, S)`` 0/1.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = make_model(train_images.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n = len(train_images)
    steps_per_epoch = math.ceil(n / batch_size)
    # timing probe: 3 steps after one warm-up step (the warm-up's update is undone by re-initialising)
    probe = make_model(train_images.shape[1])
    probe_opt = torch.optim.AdamW(probe.parameters(), lr=lr)
    times = []
    for step in range(4):
        idx = rng.choice(n, size=min(batch_size, n), replace=False)
        x, y = _batch(train_images, train_masks, idx, rng)
        start = time.perf_counter()
        loss = dice_bce(probe(x), y)
        probe_opt.zero_grad()
        loss.backward()
        probe_opt.step()
        if step:
            times.append(time.perf_counter() - start)
    del probe, probe_opt
    per_step = float(np.median(times))
    t0 = time.perf_counter()
    predict_probabilities(model, val_images[: min(8, len(val_images))])
    val_s = (time.perf_counter() - t0) * len(val_images) / max(1, min(8, len(val_images)))
    planned = max(1, int(budget_s / (per_step * 1.05 + val_s / steps_per_epoch)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=planned)
    log(f"hand U-Net: {per_step:.2f} s/step, val {val_s:.0f} s → {planned} steps ({planned / steps_per_epoch:.1f} ep)")
    best, best_state, best_epoch, steps, history = -1.0, None, -1, 0, []
    started = time.perf_counter()
    epoch = 0
    while steps < planned and time.perf_counter() - started < budget_s:
        model.train()
        order = rng.permutation(n)
        losses = []
        for b in range(steps_per_epoch):
            if steps >= planned or time.perf_counter() - started >= budget_s:
                break
            x, y = _batch(train_images, train_masks, order[b * batch_size : (b + 1) * batch_size], rng)
            loss = dice_bce(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            losses.append(loss.item())
        val = mean_dice(predict_probabilities(model, val_images), val_masks)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else math.nan, "val_dice": val})
        log(f"hand U-Net epoch {epoch + 1}: loss {history[-1]['train_loss']:.4f}, val Dice {val:.4f}, {steps} steps")
        if val > best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        epoch += 1
        # re-plan the one-cycle from the measured time per step (validation included) so the budget is spent
        measured = (time.perf_counter() - started) / max(1, steps)
        replanned = max(steps + 1, int(budget_s / measured))
        if steps < planned and abs(replanned - planned) > 0.03 * planned:
            planned = replanned
            sched = _one_cycle(opt, lr, planned, done=steps)
    seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return HandResult(model, steps, planned, epoch, best_epoch, best, seconds, per_step, history)
