"""Finding sources in images: the detector file formats, the loaded detector, tiles through the
model, the merge across tiles, and the ``infer`` run that measures and writes the results."""
