"""The IAM policy an operator needs for the CLI (``examples/operator-policy.json``): it allows every
call that ``plan``/``apply``/``status``/``drain``/``handle-event``/``refresh``/``teardown`` make,
and nothing they never need (issue 13 item 10). The calls are read from the workflows' own
modules and checked against botocore's service models, so a new call without its permission, or
a permission nothing uses, fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore
import botocore.session

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "operator-policy.json"
#: The modules the CLI's commands run (the Lambda-only handlers module is the Terraform roles' business).
CLI_MODULES = ("advise", "ami", "apply", "doctor", "drain", "fallback", "interruption", "ledger", "observe", "protection", "refresh", "savings", "status", "store", "teardown", "watchdog")
_CALL = re.compile(r'"(autoscaling|dynamodb|ec2|ecs|elbv2|events|iam|lambda|sqs|ssm)",\s*"([a-z0-9_]+)"')
_IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
#: A DynamoDB transaction is authorised by the underlying item actions
#: (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
_IAM_ACTIONS = {"dynamodb:TransactWriteItems": {"dynamodb:PutItem", "dynamodb:DeleteItem"}}
#: Authorised by AWS on the caller's behalf, not called by ecsspot itself: creating or updating an
#: Auto Scaling group from a launch template checks ec2:RunInstances, ec2:CreateTags (tags on
#: launch) and iam:PassRole for the instance profile; tags given on create need the services' tag
#: actions; the first group and cluster of an account create their service-linked roles.
INDIRECT = {
    "ec2:RunInstances",
    "ec2:CreateTags",
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
    "ecs:TagResource",
    "dynamodb:TagResource",
}


def _operations() -> dict[str, dict[str, str]]:
    """Service → snake_case method name → the API's name, from botocore's models."""
    session = botocore.session.get_session()
    ops: dict[str, dict[str, str]] = {}
    for service in ("autoscaling", "dynamodb", "ec2", "ecs", "elbv2", "events", "lambda", "sqs", "ssm"):
        names = session.get_service_model(service).operation_names
        ops[service] = {botocore.xform_name(n): n for n in names}
    return ops


def needed_actions() -> set[str]:
    ops = _operations()
    actions = set()
    for module in CLI_MODULES:
        for service, operation in _CALL.findall((REPO / "ecsspot" / f"{module}.py").read_text(encoding="utf-8")):
            name = ops[service].get(operation)
            if name is None:
                continue  # a string that looks like a call but is none (e.g. "ecs", "fargate")
            action = f"{_IAM_PREFIX.get(service, service)}:{name}"
            actions |= _IAM_ACTIONS.get(action, {action})
    return actions


def policy_actions() -> set[str]:
    document = json.loads(POLICY.read_text(encoding="utf-8"))
    assert document["Version"] == "2012-10-17"
    return {a for st in document["Statement"] if st["Effect"] == "Allow" for a in st["Action"]}


def test_the_operator_policy_allows_every_call_the_cli_makes() -> None:
    needed = needed_actions()
    assert len(needed) >= 40  # the scan found the workflows' calls
    assert needed - policy_actions() == set()


def test_the_operator_policy_allows_nothing_the_cli_never_needs() -> None:
    assert policy_actions() - needed_actions() - INDIRECT == set()
