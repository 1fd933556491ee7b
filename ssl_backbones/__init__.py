"""Self-supervised (SimCLR, BYOL) ResNet backbones for radio continuum images."""
