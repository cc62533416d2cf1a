"""3D networks (MONAI) and memory-bounded sliding-window inference over whole volumes.

``create_volume_model("unet3d" | "segresnet3d" | "tiny_unet3d", in_chans, num_outputs)`` returns a
``(B, C, D, H, W) → (B, K, D, H, W)`` network; :func:`sliding_window_logits` runs it over a volume of any size in
``roi`` patches (MONAI ``sliding_window_inference``, Gaussian blending), keeping the patches on the model's device
and the stitched output on ``output_device`` (the CPU by default), so GPU memory is bounded by
``sw_batch_size × roi`` whatever the volume's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from osteon.errors import ConfigError

VOLUME_MODELS = ("unet3d", "segresnet3d", "tiny_unet3d")


def create_volume_model(name: str, in_chans: int, num_outputs: int) -> nn.Module:
    """A MONAI 3D segmentation network (sides of the input must be multiples of 16 for unet3d/tiny_unet3d)."""
    from monai.networks.nets import SegResNet, UNet

    if name == "unet3d":
        return UNet(3, in_chans, num_outputs, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
    if name == "tiny_unet3d":
        return UNet(3, in_chans, num_outputs, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    if name == "segresnet3d":
        return SegResNet(spatial_dims=3, in_channels=in_chans, out_channels=num_outputs, init_filters=16)
    raise ConfigError(f"volume model {name!r} is not available; use one of {', '.join(VOLUME_MODELS)}.")


@torch.no_grad()
def sliding_window_logits(
    model: nn.Module,
    volume: torch.Tensor,
    *,
    roi: Sequence[int],
    overlap: float = 0.25,
    sw_batch_size: int = 2,
    output_device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Logits ``(B, K, D, H, W)`` of ``volume`` ``(B, C, D, H, W)`` from ``roi``-sized patches.

    The volume may live on the CPU; patches are moved to the model's device one batch at a time.
    """
    from monai.inferers import sliding_window_inference

    device = next(model.parameters()).device
    return sliding_window_inference(
        volume,
        roi_size=tuple(int(r) for r in roi),
        sw_batch_size=sw_batch_size,
        predictor=model,
        overlap=overlap,
        mode="gaussian",
        sw_device=device,
        device=torch.device(output_device),
    )
