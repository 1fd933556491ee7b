"""Self-supervised methods, one file each."""
