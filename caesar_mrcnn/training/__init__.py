"""Building blocks of detector training: configuration, optimiser, backbone set-up,
checkpoints, validation and TensorBoard summaries. The entry point is
:func:`caesar_mrcnn.training.loop.train`."""
