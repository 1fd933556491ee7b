"""Scoring detections against ground truth: matching, metrics, COCO AP, reports, comparisons.

Modules
-------
matching
    Mask IoU between bbox-cropped masks and one-to-one (Hungarian) assignment.
metrics
    Completeness, reliability, Wilson intervals, confusion matrix, astrometry and photometry.
coco_eval
    COCO AP / AP50 / AP75 for boxes and masks through pycocotools.
report
    Writing report.json, CSV tables and PNG plots.
catalog_match
    Matching source catalogues (positions, ellipses) to ground truth, for every finder alike.
finders
    Running the classical source finders Aegean and PyBDSF.
"""
