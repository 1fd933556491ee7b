"""Readers and writers: FITS images, DS9 regions, catalogues, COCO and caesar JSON datasets."""
