"""Configuration of the Mask R-CNN detector (architecture, anchors, sampling, post-processing)."""

from __future__ import annotations

from dataclasses import dataclass

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.errors import ConfigError


@dataclass
class ModelConfig:
    """Mask R-CNN options. Sizes in pixels of the network input image.

    Anchor sizes default to small values (8-128 px on P2-P6) because radio sources are
    mostly compact: a few beams across.
    """

    arch: str = "resnet18"
    in_channels: int = 1
    image_size: int = 256
    num_classes: int = len(CLASS_NAMES) + 1
    small_stem: bool = False
    norm: str = "batch"
    # FPN / anchors
    fpn_channels: int = 256
    anchor_sizes: tuple[float, ...] = (8.0, 16.0, 32.0, 64.0, 128.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    # RPN
    rpn_head_channels: int = 256
    rpn_pre_nms_topk_train: int = 1000
    rpn_post_nms_topk_train: int = 500
    rpn_pre_nms_topk_infer: int = 500
    rpn_post_nms_topk_infer: int = 250
    rpn_nms_iou: float = 0.7
    rpn_fg_iou: float = 0.7
    rpn_bg_iou: float = 0.3
    rpn_samples_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_box_beta: float = 1.0 / 9.0
    # ROI heads
    roi_samples_per_image: int = 128
    roi_positive_fraction: float = 0.25
    roi_fg_iou: float = 0.5
    roi_bg_iou: float = 0.5
    roi_canonical_size: float | None = None
    """Box side (pixels) pooled from ``roi_canonical_level``; None: the anchor size of that
    level, so boxes pool from the level whose anchors match them. (Mask R-CNN's 224 is the
    ImageNet crop size: with 8-128 px anchors every box under 112 px would pool from P2.)"""
    roi_canonical_level: int = 4
    roi_sampling_ratio: int = 2
    roi_align_impl: str = "crop_and_resize"
    box_roi_size: int = 7
    box_head_dims: tuple[int, ...] = (1024, 1024)
    box_loss_beta: float = 1.0
    mask_roi_size: int = 14
    mask_head_convs: int = 4
    mask_head_channels: int = 256
    mask_size: int = 28
    max_gt: int = 50
    # inference
    detections_per_image: int = 100
    score_threshold: float = 0.05
    nms_iou: float = 0.5
    mixed_precision: bool = False

    @property
    def min_stride(self) -> int:
        """Stride of P2 in pixels (1 with the small stem, 4 otherwise)."""
        return 1 if self.small_stem else 4

    @property
    def level_strides(self) -> tuple[int, ...]:
        """Strides of P2..P6 in pixels."""
        return tuple(self.min_stride * 2**i for i in range(5))

    def validate(self) -> None:
        """Raise ConfigError("key: why") for inconsistent options."""
        if self.arch not in ("resnet18", "resnet50"):
            raise ConfigError(f"arch: {self.arch!r} is not one of 'resnet18', 'resnet50'")
        if self.norm not in ("batch", "group", "frozen_batch"):
            raise ConfigError(f"norm: {self.norm!r} is not one of 'batch', 'group', 'frozen_batch'")
        if self.roi_align_impl not in ("crop_and_resize", "gather"):
            raise ConfigError(
                f"roi_align_impl: {self.roi_align_impl!r} is not 'crop_and_resize' or 'gather'"
            )
        if self.in_channels < 1:
            raise ConfigError(f"in_channels: must be >= 1, got {self.in_channels}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes: must count background + >= 1 class, got "
                              f"{self.num_classes}")
        c5_stride = self.level_strides[3]
        if self.image_size <= 0 or self.image_size % c5_stride:
            raise ConfigError(f"image_size: must be a positive multiple of {c5_stride} "
                              f"(the C5 stride), got {self.image_size}")
        if len(self.anchor_sizes) != 5:
            raise ConfigError(f"anchor_sizes: need 5 sizes (P2..P6), got {len(self.anchor_sizes)}")
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise ConfigError("aspect_ratios: need at least one positive ratio (height/width)")
        for key in ("rpn_positive_fraction", "roi_positive_fraction", "rpn_nms_iou", "nms_iou",
                    "rpn_fg_iou", "rpn_bg_iou", "roi_fg_iou", "roi_bg_iou"):
            val = getattr(self, key)
            if not 0.0 < val <= 1.0:
                raise ConfigError(f"{key}: must be in (0, 1], got {val}")
        if not 0.0 <= self.score_threshold < 1.0:
            raise ConfigError(f"score_threshold: must be in [0, 1), got {self.score_threshold}")
        if self.rpn_bg_iou > self.rpn_fg_iou:
            raise ConfigError("rpn_bg_iou: must not exceed rpn_fg_iou")
        if self.roi_bg_iou > self.roi_fg_iou:
            raise ConfigError("roi_bg_iou: must not exceed roi_fg_iou")
        if self.roi_canonical_size is not None and self.roi_canonical_size <= 0:
            raise ConfigError(f"roi_canonical_size: must be > 0 or null, got "
                              f"{self.roi_canonical_size}")
        if not 2 <= self.roi_canonical_level <= 5:
            raise ConfigError(f"roi_canonical_level: must be 2..5 (P2..P5), got "
                              f"{self.roi_canonical_level}")
        if self.mask_size != 2 * self.mask_roi_size:
            raise ConfigError(f"mask_size: must be 2 * mask_roi_size ({2 * self.mask_roi_size}) "
                              "because the mask head upsamples once")
        for key in ("max_gt", "detections_per_image", "roi_samples_per_image",
                    "rpn_samples_per_image", "roi_sampling_ratio", "fpn_channels",
                    "rpn_pre_nms_topk_train", "rpn_post_nms_topk_train",
                    "rpn_pre_nms_topk_infer", "rpn_post_nms_topk_infer"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")

    @property
    def roi_canonical(self) -> float:
        """Box side (pixels) that pools from ``roi_canonical_level``."""
        if self.roi_canonical_size is not None:
            return float(self.roi_canonical_size)
        return float(self.anchor_sizes[self.roi_canonical_level - 2])
