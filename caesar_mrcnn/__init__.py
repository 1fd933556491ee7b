"""caesar-mrcnn: radio source detection and segmentation with a self-supervised Mask R-CNN."""

__version__ = "0.1.0"
