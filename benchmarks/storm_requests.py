"""The storm's AWS requests by operation: what a drain's looks cost at 50 services (issue 12 goal 6).

``benchmarks.storm``'s storm of ``instances`` instances (default 100), every botocore request
counted by operation name (a wrapper around ``BaseClient._make_api_call``, in this process only).
Counts do not depend on load; wall and CPU do.

Run: python -m benchmarks.storm_requests [INSTANCES]
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from typing import Any


def main() -> None:
    import botocore.client

    from benchmarks.storm import run

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    # Typed loosely: botocore's stubs do not declare the private method every request goes through.
    client_class: Any = botocore.client.BaseClient
    original = client_class._make_api_call

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        with lock:
            counts[operation_name] += 1
        return original(self, operation_name, api_params)

    client_class._make_api_call = counted
    try:
        figures = run(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    finally:
        client_class._make_api_call = original
    figures["aws_requests"] = sum(counts.values())
    figures["by_operation"] = dict(counts.most_common())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
