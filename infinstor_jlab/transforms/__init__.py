"""Cells as transforms: capture, manifests, the driver every executor runs, and executors."""
