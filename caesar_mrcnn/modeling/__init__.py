"""Mask R-CNN in Keras 3: anchors, box coding, FPN, RPN, ROIAlign, heads, losses, model."""
