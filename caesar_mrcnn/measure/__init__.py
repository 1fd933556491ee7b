"""Measuring detected sources: background and rms maps, moments, Gaussian fits, ellipses, sky
geometry, names and the catalogue schema."""
