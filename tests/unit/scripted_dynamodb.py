"""Scripted DynamoDB reads: a BatchGetItem answered key by key by a test's GetItem responder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecsspot.aws.calls import Call, call


def batch_get(get_item: Callable[[Call], Any]) -> Callable[[Call], Any]:
    """A BatchGetItem responder that asks ``get_item`` for each key, as GetItem would be asked."""

    def answer(c: Call) -> Any:
        responses: dict[str, list[Any]] = {}
        for table, request in c.params["RequestItems"].items():
            for key in request["Keys"]:
                found = get_item(call("dynamodb", "get_item", TableName=table, Key=key)) or {}
                if found.get("Item"):
                    responses.setdefault(table, []).append({**key, **found["Item"]})
        return {"Responses": responses, "UnprocessedKeys": {}}

    return answer
