"""Mask R-CNN (ResNet + FPN) as a Keras 3 model with static shapes.

``compute_losses`` runs the training graph (RPN targets, proposals, ROI sampling, heads,
losses); ``call`` runs inference and returns padded detections with full-image masks. Both
trace once per input shape inside ``tf.function``. ROIAlign through
``tf.image.crop_and_resize`` has no XLA kernel: use ``roi_align_impl="gather"`` for
``jit_compile=True``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.modeling.anchors import multilevel_anchors
from caesar_mrcnn.modeling.box_ops import clip_boxes, decode_boxes
from caesar_mrcnn.modeling.config import ModelConfig
from caesar_mrcnn.modeling.fpn import build_fpn
from caesar_mrcnn.modeling.heads import build_box_head, build_mask_head
from caesar_mrcnn.modeling.losses import (
    box_regression_loss,
    classification_loss,
    mask_loss,
    rpn_losses,
)
from caesar_mrcnn.modeling.mask_ops import paste_masks
from caesar_mrcnn.modeling.nms import objectness_detections
from caesar_mrcnn.modeling.roi_align import multilevel_roi_align
from caesar_mrcnn.modeling.rpn import build_rpn_head, flatten_rpn_outputs, generate_proposals
from caesar_mrcnn.modeling.targets import ROI_BOX_WEIGHTS, mask_targets, roi_targets, rpn_targets
from ssl_backbones.resnet import build_resnet, feature_channels

LOSS_KEYS = ("rpn_cls", "rpn_box", "cls", "box", "mask", "total")
ROI_LEVELS = (2, 3, 4, 5)


class MaskRCNN(keras.Model):
    """Mask R-CNN with a ResNet18/50 backbone and an FPN.

    Parameters
    ----------
    cfg : ModelConfig
        Validated here; raises ``ConfigError`` on inconsistent options.
    seed : int, optional
        Seed of the ROI/anchor sampling noise.

    Attributes
    ----------
    backbone : keras.Model
        :func:`ssl_backbones.resnet.build_resnet` model; load pretrained weights into it with
        :func:`ssl_backbones.resnet.load_backbone_weights`.
    fpn, rpn_head, box_head, mask_head : keras.Model
    """

    def __init__(self, cfg: ModelConfig, seed: int | None = None, name: str = "mask_rcnn",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        cfg.validate()
        self.cfg = cfg
        chans = feature_channels(cfg.arch)
        self.backbone = build_resnet(cfg.arch, cfg.in_channels, cfg.small_stem, cfg.norm,
                                     name="backbone")
        self.fpn = build_fpn({k: chans[k] for k in ("C2", "C3", "C4", "C5")}, cfg.fpn_channels)
        self.rpn_head = build_rpn_head(cfg.fpn_channels, cfg.rpn_head_channels,
                                       len(cfg.aspect_ratios))
        self.box_head = build_box_head(cfg.box_roi_size, cfg.fpn_channels, cfg.box_head_dims,
                                       cfg.num_classes)
        self.mask_head = build_mask_head(cfg.mask_roi_size, cfg.fpn_channels,
                                         cfg.mask_head_convs, cfg.mask_head_channels,
                                         cfg.num_classes)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    # -- shared pieces ---------------------------------------------------------------------------

    def _check_images(self, images):
        shape = tuple(images.shape)
        c5 = self.cfg.level_strides[3]
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ConfigError(f"images: need a static [B, H, W, C] shape, got {shape}")
        if shape[1] % c5 or shape[2] % c5:
            raise ConfigError(f"images: height and width must be multiples of {c5}, got "
                              f"{shape[1]}x{shape[2]}")
        if shape[3] != self.cfg.in_channels:
            raise ConfigError(f"in_channels: model expects {self.cfg.in_channels} channel(s), "
                              f"images have {shape[3]}")
        return int(shape[1]), int(shape[2])

    def _pyramid(self, images, training):
        feats = self.backbone(images, training=training)
        return self.fpn({k: feats[k] for k in ("C2", "C3", "C4", "C5")}, training=training)

    def _anchors(self, pyramid):
        grids = [(int(pyramid[f"P{lv}"].shape[1]), int(pyramid[f"P{lv}"].shape[2]))
                 for lv in range(2, 7)]
        anchors, counts = multilevel_anchors(grids, self.cfg.level_strides,
                                             self.cfg.anchor_sizes, self.cfg.aspect_ratios)
        return anchors, counts

    def _rpn(self, pyramid, training):
        outs = [self.rpn_head(pyramid[f"P{lv}"], training=training) for lv in range(2, 7)]
        return flatten_rpn_outputs(outs)

    def _roi_features(self, pyramid, boxes, size):
        cfg = self.cfg
        strides = dict(zip(ROI_LEVELS, cfg.level_strides[:4]))
        return multilevel_roi_align(
            {lv: pyramid[f"P{lv}"] for lv in ROI_LEVELS}, boxes, size, strides,
            sampling_ratio=cfg.roi_sampling_ratio, canonical_size=cfg.roi_canonical,
            canonical_level=cfg.roi_canonical_level, impl=cfg.roi_align_impl,
        )

    def _box_head(self, features, training):
        shape = ops.shape(features)
        b, r = shape[0], features.shape[1]
        flat = ops.reshape(features, (-1,) + tuple(features.shape[2:]))
        out = self.box_head(flat, training=training)
        k = self.cfg.num_classes
        logits = ops.reshape(ops.cast(out["logits"], "float32"), (b, r, k))
        deltas = ops.reshape(ops.cast(out["deltas"], "float32"), (b, r, k, 4))
        return logits, deltas

    def _mask_head(self, features, training):
        shape = ops.shape(features)
        b, r = shape[0], shape[1]
        flat = ops.reshape(features, (-1,) + tuple(features.shape[2:]))
        out = ops.cast(self.mask_head(flat, training=training), "float32")
        return ops.reshape(out, (b, r) + tuple(out.shape[1:]))

    # -- training --------------------------------------------------------------------------------

    def compute_losses(self, images, gt_boxes, gt_classes, gt_masks, training=True):
        """Training losses of a padded batch.

        Parameters
        ----------
        images : float ``[B, H, W, C]`` (static H, W)
        gt_boxes : float ``[B, G, 4]`` pixel boxes (y0, x0, y1, x1)
        gt_classes : int ``[B, G]``, 1-based, 0 = padding
        gt_masks : float or bool ``[B, G, H, W]`` full-image masks
        training : bool
            Passed to the backbone and heads (batch-norm mode).

        Returns
        -------
        dict of float32 scalars: ``rpn_cls, rpn_box, cls, box, mask, total``.
        """
        cfg = self.cfg
        height, width = self._check_images(images)
        gt_boxes = ops.cast(gt_boxes, "float32")
        gt_classes = ops.cast(gt_classes, "int32")
        pyramid = self._pyramid(images, training)
        anchors, counts = self._anchors(pyramid)
        logits, deltas = self._rpn(pyramid, training)

        labels, target_deltas = rpn_targets(
            anchors, gt_boxes, gt_classes, cfg.rpn_fg_iou, cfg.rpn_bg_iou,
            cfg.rpn_samples_per_image, cfg.rpn_positive_fraction, self.seed_generator)
        rpn_cls, rpn_box = rpn_losses(logits, deltas, labels, target_deltas, cfg.rpn_box_beta)

        proposals, _, proposal_valid = generate_proposals(
            ops.stop_gradient(logits), ops.stop_gradient(deltas), anchors, counts,
            (height, width), cfg.rpn_pre_nms_topk_train, cfg.rpn_post_nms_topk_train,
            cfg.rpn_nms_iou)
        proposals = ops.stop_gradient(proposals)
        t = roi_targets(proposals, proposal_valid, gt_boxes, gt_classes, cfg.roi_fg_iou,
                        cfg.roi_bg_iou, cfg.roi_samples_per_image, cfg.roi_positive_fraction,
                        self.seed_generator)

        box_feats = self._roi_features(pyramid, t["rois"], cfg.box_roi_size)
        cls_logits, box_deltas = self._box_head(box_feats, training)
        cls_loss = classification_loss(cls_logits, t["classes"], t["valid"])
        box_loss = box_regression_loss(box_deltas, t["classes"], t["box_targets"],
                                       t["is_positive"], t["valid"], cfg.box_loss_beta)

        # Positives come first in the sample, so the mask branch only sees those slots.
        m = max(1, int(cfg.roi_samples_per_image * cfg.roi_positive_fraction))
        pos_rois = t["rois"][:, :m]
        mask_feats = self._roi_features(pyramid, pos_rois, cfg.mask_roi_size)
        mask_logits = self._mask_head(mask_feats, training)
        targets = mask_targets(gt_masks, t["gt_index"][:, :m], pos_rois, cfg.mask_size,
                               cfg.roi_align_impl)
        m_loss = mask_loss(mask_logits, t["classes"][:, :m], targets, t["is_positive"][:, :m])

        losses = {"rpn_cls": rpn_cls, "rpn_box": rpn_box, "cls": cls_loss, "box": box_loss,
                  "mask": m_loss}
        losses = {k: ops.cast(v, "float32") for k, v in losses.items()}
        losses["total"] = ops.sum(ops.stack(list(losses.values())))
        return losses

    # -- inference -------------------------------------------------------------------------------

    def call(self, images, training=False, min_score=None):
        """Detections of a batch of images.

        Parameters
        ----------
        images : float ``[B, H, W, C]`` (static H, W, multiples of the C5 stride)
        min_score : float or scalar tensor, optional
            Keep only the detection slots up to the last one with objectness ``>= min_score``
            in any image of the batch (at least one): the mask head, which costs more than
            the rest of the network together at 100 slots, then runs on those alone. The
            kept slots are exactly those of the full output.

        Returns
        -------
        dict
            ``boxes [B, D, 4]`` float32 pixels (y0, x0, y1, x1); ``scores [B, D]`` float32
            objectness (1 - p(background)); ``classes [B, D]`` int32 (1-based, 0 = padding),
            the most probable foreground class; ``probs [B, D, K - 1]`` float32 foreground
            class probabilities; ``masks [B, D, H, W]`` float32
            probabilities at image resolution; ``valid [B, D]`` bool. D =
            ``detections_per_image`` (fewer with ``min_score``); detections are sorted by
            score, padding last.
        """
        cfg = self.cfg
        height, width = self._check_images(images)
        pyramid = self._pyramid(images, training)
        anchors, counts = self._anchors(pyramid)
        logits, deltas = self._rpn(pyramid, training)
        proposals, _, proposal_valid = generate_proposals(
            logits, deltas, anchors, counts, (height, width), cfg.rpn_pre_nms_topk_infer,
            cfg.rpn_post_nms_topk_infer, cfg.rpn_nms_iou)

        cls_logits, box_deltas = self._box_head(
            self._roi_features(pyramid, proposals, cfg.box_roi_size), training)
        probs = ops.softmax(cls_logits, axis=-1)
        boxes = decode_boxes(box_deltas, proposals[:, :, None, :], ROI_BOX_WEIGHTS)
        boxes = clip_boxes(boxes, height, width)
        det = objectness_detections(boxes, probs, proposal_valid, cfg.detections_per_image,
                                    cfg.nms_iou, cfg.score_threshold)
        if min_score is not None:
            det = _first_slots(det, min_score)

        mask_logits = self._mask_head(
            self._roi_features(pyramid, det["boxes"], cfg.mask_roi_size), training)
        idx = det["classes"][:, :, None, None, None]
        s = cfg.mask_size
        idx = ops.broadcast_to(idx, (ops.shape(idx)[0], ops.shape(idx)[1], s, s, 1))
        roi_masks = ops.sigmoid(ops.take_along_axis(mask_logits, idx, axis=-1)[..., 0])
        masks = paste_masks(roi_masks, det["boxes"], height, width, cfg.roi_align_impl)
        det["masks"] = masks * ops.cast(det["valid"], "float32")[:, :, None, None]
        return det

    def dummy_images(self, batch_size: int = 1) -> np.ndarray:
        """Zeros of the configured input shape ``[batch, S, S, C]`` (to trace or build)."""
        s = self.cfg.image_size
        return np.zeros((batch_size, s, s, self.cfg.in_channels), np.float32)


def _first_slots(det: dict, min_score) -> dict:
    """The leading detection slots of a batch that hold every detection with objectness
    ``>= min_score`` (slots are sorted by score, so these are a prefix; at least one slot)."""
    hits = ops.logical_and(det["valid"], det["scores"] >= min_score)
    n = ops.maximum(ops.max(ops.sum(ops.cast(hits, "int32"), axis=1)), 1)
    return {k: v[:, :n] for k, v in det.items()}
