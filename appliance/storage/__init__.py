"""Storage: the data partition (and, later, encrypted volumes and USB disks)."""
