"""The public API: ``Manager`` (boto3) and ``AsyncManager`` (aiobotocore) over the same workflows.

``AsyncManager`` is written in ecsspot/_async/manager.py; ``Manager`` is generated from it by
scripts/unasync.py (a test fails when the two drift apart).
"""

from __future__ import annotations

from ecsspot._async.manager import AsyncManager
from ecsspot._sync.manager import Manager

__all__ = ["AsyncManager", "Manager"]
