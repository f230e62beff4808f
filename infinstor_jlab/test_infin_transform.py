"""``from infinstor_jlab import test_infin_transform`` (the original InfinStor entry point)."""

from .transforms.local_test import test_infin_transform

__all__ = ["test_infin_transform"]
