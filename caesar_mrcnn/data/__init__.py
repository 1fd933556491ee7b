"""Datasets, preprocessing, augmentation and tf.data pipelines."""
