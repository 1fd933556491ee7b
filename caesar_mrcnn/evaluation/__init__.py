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
    Running the source finders (caesar-mrcnn, Aegean, PyBDSF); catalogues in one form.
aegean_compat
    Script that runs aegean with the NumPy alias AegeanTools 2.3.5 still needs.
compare
    Every finder on simulated fields, scored against their ground truth.
reference
    Reference catalogues of real images; the cross-match and central-galaxy rules.
compare_real
    Every finder on real images, scored against a reference catalogue or known galaxies.
compare_report
    Markdown, CSV/ECSV tables and plots of both comparisons.
"""
