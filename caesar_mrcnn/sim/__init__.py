"""The radio-sky simulator: labelled fields and unlabelled cutouts for training and evaluation."""
