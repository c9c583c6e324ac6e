"""Static checks of the Terraform module (terraform/) and its examples (terraform/examples/*).

``test_real_terraform.py`` runs ``terraform validate`` and ``plan`` where a Terraform binary is
installed; these checks add the contracts Terraform cannot see (the hooks' protocol,
least-privilege IAM, handler names, explicit launch template versions and the names ``ecsspot
apply`` uses) and run everywhere. They parse with python-hcl2 only (no AWS, no network) and run
in well under a second.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULE_DIR = TERRAFORM
EXAMPLE_DIRS = sorted(p for p in (TERRAFORM / "examples").glob("*") if p.is_dir())
MODULE_DIRS = [MODULE_DIR, *EXAMPLE_DIRS]
TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)

#: Query keys of each ``ecsspot tf HOOK`` as forms (required keys, optional keys): DESIGN.md
#: "Terraform hooks", plus the inline user-data form (cluster, ecs_config_json, extra_user_data)
#: the module uses so it needs no spec file. ``ecsspot_cli.terraform`` owns the real table; a test
#: of the hooks compares it with this one.
HOOK_QUERY_FORMS: dict[str, tuple[tuple[frozenset[str], frozenset[str]], ...]] = {
    "ami": ((frozenset({"ami"}), frozenset()),),
    "user-data": (
        (frozenset({"spec"}), frozenset()),
        (frozenset({"cluster"}), frozenset({"ecs_config_json", "extra_user_data"})),
    ),
    "plan": ((frozenset({"spec"}), frozenset()),),
    "lint": ((frozenset({"spec"}), frozenset()),),
    "status": ((frozenset({"cluster"}), frozenset()),),
}

#: Every query key each hook accepts.
HOOK_QUERY_KEYS: dict[str, frozenset[str]] = {
    hook: frozenset().union(*(required | optional for required, optional in forms)) for hook, forms in HOOK_QUERY_FORMS.items()
}

#: Result keys each hook promises at least (DESIGN.md). ``status`` also has per-pool counts,
#: whose names depend on the cluster, so its references are not checked.
HOOK_RESULT_KEYS: dict[str, frozenset[str] | None] = {
    "ami": frozenset({"image_id", "source"}),
    "user-data": frozenset({"user_data_base64", "sha256"}),
    "plan": frozenset({"has_changes", "create", "update", "replace", "delete", "warnings"}),
    "lint": frozenset({"count", "codes"}),
    "status": None,
}

#: The Lambda entry points the module deploys (a test of ecsspot.handlers checks they exist).
LAMBDA_HANDLERS = frozenset({"ecsspot.handlers.interruption", "ecsspot.handlers.refresh"})

_META_KEYS = frozenset({"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"})
_READ_ONLY_ACTION = re.compile(r"^[a-z0-9-]+:(Describe|List|Get)[A-Za-z0-9*]*$")
_WILDCARD_ACTION = re.compile(r"^(\*|[a-z0-9-]+:\*)$")
_VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
_RESOURCE = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_DATA = re.compile(r"(?<![\w.])data\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_MODULE_OUTPUT = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_EXTERNAL_RESULT = re.compile(r"(?<![\w.])data\.external\.([A-Za-z_][\w-]*)\.result\.([A-Za-z_][\w-]*)")


# --- reading HCL -----------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    """A python-hcl2 string without the quotes 8.x keeps (``'"ecsspot"'`` -> ``'ecsspot'``)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def normalise(node: Any) -> Any:
    """Parsed HCL as plain data: quotes stripped from keys and strings, parser metadata dropped.

    Interpolations stay as written (``'${var.cluster}'``), so a value is either a literal or an
    expression string; python-hcl2 4.x (no quotes, no metadata) gives the same result.
    """
    if isinstance(node, dict):
        return {unquote(k): normalise(v) for k, v in node.items() if k not in _META_KEYS}
    if isinstance(node, list):
        return [normalise(v) for v in node]
    return unquote(node)


@functools.cache
def parse_raw(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh)


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return normalise(parse_raw(path))


def strings(node: Any) -> Iterator[str]:
    """Every string value under ``node`` (not keys: those are names, not expressions)."""
    if isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def blocks(node: Any, name: str) -> list[dict[str, Any]]:
    """The ``name`` blocks in a body: python-hcl2 lists repeated blocks; a lone one may be a dict."""
    found = node.get(name, []) if isinstance(node, dict) else []
    return found if isinstance(found, list) else [found]


def dynamic_contents(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The ``content`` bodies of ``dynamic "name"`` blocks."""
    out = []
    for dyn in blocks(body, "dynamic"):
        if name in dyn:
            out += blocks(dyn[name], "content")
    return out


class Module:
    """The top-level blocks of one Terraform module (every .tf file of one directory)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.files = sorted(directory.glob("*.tf"))
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.modules: dict[str, dict[str, Any]] = {}
        self.providers: list[dict[str, Any]] = []
        self.terraform: list[dict[str, Any]] = []
        for path in self.files:
            doc = parse(path)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for entry in doc.get(kind, []):
                    for type_, named in entry.items():
                        for name, body in named.items():
                            target[(type_, name)] = body
            for kind, target in (("variable", self.variables), ("output", self.outputs), ("module", self.modules)):
                for entry in doc.get(kind, []):
                    target.update(entry)
            for entry in doc.get("locals", []):
                self.locals.update(entry)
            self.providers += doc.get("provider", [])
            self.terraform += doc.get("terraform", [])

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == type_}

    def data_of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.data.items() if t == type_}

    def everything(self) -> list[Any]:
        return [parse(p) for p in self.files]


@functools.cache
def module(directory: Path) -> Module:
    return Module(directory)


def local_module_dir(owner: Module, call: dict[str, Any]) -> Path | None:
    source = call.get("source", "")
    if isinstance(source, str) and source.startswith(("./", "../")):
        return (owner.dir / source).resolve()
    return None


# --- IAM policy extraction -------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(mod: Module) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement of every aws_iam_policy_document, dynamic ones included."""
    out = []
    for name, doc in mod.data_of_type("aws_iam_policy_document").items():
        for i, st in enumerate(blocks(doc, "statement") + dynamic_contents(doc, "statement")):
            out.append((f"{mod.dir.name}: data.aws_iam_policy_document.{name} statement {st.get('sid', i)}", st))
    return out


def _quoted_values(text: str) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text)


def jsonencode_policies(mod: Module) -> list[tuple[str, list[str], list[str]]]:
    """(where, actions, resources) of every inline policy written with jsonencode or as JSON text."""
    out = []
    for (type_, name), body in mod.resources.items():
        for text in strings(body):
            if not re.search(r'"?\b(Action|NotAction)"?\s*[=:]', text):
                continue
            actions: list[str] = []
            resources: list[str] = []
            for key, value in re.findall(r'"?\b(Action|NotAction|Resource|NotResource)"?\s*[=:]\s*(\[[^\]]*\]|"(?:[^"\\]|\\.)*")', text):
                (actions if "Action" in key else resources).extend(_quoted_values(value))
            out.append((f"{mod.dir.name}: {type_}.{name}", actions, resources))
    return out


def statement_problems(where: str, actions: list[str], resources: list[str], effect: str = "Allow") -> list[str]:
    """Least-privilege rules: no wildcard action; resource "*" only with read-only actions."""
    if effect == "Deny":
        return []
    problems = [f'{where}: wildcard action "{a}"' for a in actions if _WILDCARD_ACTION.match(a)]
    if "*" in resources:
        problems += [f'{where}: "{a}" on resource "*" (only Describe*/List*/Get* may use "*")' for a in actions if not _READ_ONLY_ACTION.match(a)]
    return problems


def module_policy_problems(mod: Module) -> list[str]:
    problems = []
    for where, st in policy_statements(mod):
        if "not_actions" in st:
            problems.append(f"{where}: not_actions grants everything else")
        actions = [a for a in as_list(st.get("actions", [])) if isinstance(a, str)]
        resources = [r for r in as_list(st.get("resources", [])) if isinstance(r, str)]
        problems += statement_problems(where, actions, resources, st.get("effect", "Allow"))
    for where, actions, resources in jsonencode_policies(mod):
        problems += statement_problems(where, actions, resources)
    return problems


# --- the checks ------------------------------------------------------------------------------


def test_module_layout() -> None:
    assert (MODULE_DIR / "variables.tf").is_file() and (MODULE_DIR / "outputs.tf").is_file()
    assert "alb-service" in [p.name for p in EXAMPLE_DIRS]
    assert (TERRAFORM / "README.md").is_file()


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    doc = parse_raw(path)
    assert isinstance(doc, dict) and doc, f"{path} parsed to nothing"


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_external_data_sources_call_ecsspot_hooks(directory: Path) -> None:
    mod = module(directory)
    externals = mod.data_of_type("external")
    hooks_used: dict[str, str] = {}
    for name, body in externals.items():
        program = body.get("program")
        assert isinstance(program, list) and len(program) == 3, f"data.external.{name}: program must be [command, \"tf\", HOOK]"
        command, tf, hook = program
        assert command in ("${var.ecsspot_command}", "ecsspot"), f"data.external.{name}: runs {command!r}, not ecsspot"
        assert tf == "tf" and hook in HOOK_QUERY_FORMS, f"data.external.{name}: {program!r} is not an ecsspot hook"
        query = body.get("query", {})
        assert isinstance(query, dict), f"data.external.{name}: query must be a literal object so its keys can be checked"
        keys = set(query)
        assert any(
            required <= keys <= required | optional for required, optional in HOOK_QUERY_FORMS[hook]
        ), f"data.external.{name}: query keys {sorted(keys)} fit no form of `ecsspot tf {hook}` ({HOOK_QUERY_FORMS[hook]})"
        hooks_used[name] = hook
    for doc in mod.everything():
        for text in strings(doc):
            for name, key in _EXTERNAL_RESULT.findall(text):
                assert name in hooks_used, f"data.external.{name} is referenced but not declared"
                promised = HOOK_RESULT_KEYS[hooks_used[name]]
                assert promised is None or key in promised, f"data.external.{name}.result.{key}: `ecsspot tf {hooks_used[name]}` promises only {sorted(promised or ())}"
    if directory == MODULE_DIR:
        assert sorted(hooks_used.values()) == ["ami", "user-data"]
        assert mod.variables["ecsspot_command"].get("default") == "ecsspot"


def test_user_data_hook_uses_the_inline_form() -> None:
    (query,) = [b["query"] for b in module(MODULE_DIR).data_of_type("external").values() if b["program"][2] == "user-data"]
    assert "spec" not in query
    assert query["cluster"] == "${var.cluster}"
    assert "jsonencode(var.ecs_config)" in query["ecs_config_json"]


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_iam_policies_are_least_privilege(directory: Path) -> None:
    assert module_policy_problems(module(directory)) == []


def test_module_has_policies_to_check() -> None:
    # The least-privilege test must not pass by finding nothing.
    mod = module(MODULE_DIR)
    assert len(policy_statements(mod)) >= 15
    roles = mod.of_type("aws_iam_role_policy")
    assert set(roles) == {"interruption", "refresh"}
    assert all(r["policy"].startswith("${data.aws_iam_policy_document.") for r in roles.values())


@pytest.mark.parametrize(
    ("statement", "bad"),
    [
        ({"actions": ["*"], "resources": ["arn:aws:s3:::b"]}, "wildcard"),
        ({"actions": ["ecs:*"], "resources": ["arn:aws:ecs:*"]}, "wildcard"),
        ({"actions": ["ecs:UpdateContainerInstancesState"], "resources": ["*"]}, "on resource"),
        ({"actions": ["ecs:DescribeClusters", "ecs:ListTasks", "ssm:GetParameter"], "resources": ["*"]}, None),
        ({"actions": ["ecs:*"], "resources": ["*"], "effect": "Deny"}, None),
    ],
)
def test_policy_checker_catches_broad_statements(statement: dict[str, Any], bad: str | None) -> None:
    problems = statement_problems("t", statement["actions"], statement["resources"], statement.get("effect", "Allow"))
    assert (bad is None and not problems) or (bad is not None and problems and bad in problems[0])


def test_policy_checker_reads_jsonencode_policies(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "aws_iam_role_policy" "p" {\n'
        '  policy = jsonencode({ Version = "2012-10-17", Statement = [\n'
        '    { Effect = "Allow", Action = ["ec2:DescribeInstances"], Resource = "*" },\n'
        '    { Effect = "Allow", Action = "sqs:*", Resource = "arn:aws:sqs:us-east-1:1:q" },\n'
        "  ] })\n}\n"
    )
    problems = module_policy_problems(Module(tmp_path))
    assert len(problems) == 2 and all("sqs:*" in p for p in problems)


def test_describe_statements_on_star_explain_themselves() -> None:
    """Each statement on resource "*" carries a comment saying why AWS needs it."""
    raw = [parse_raw(p) for p in module(MODULE_DIR).files]
    if not any("__comments__" in str(doc) for doc in raw):
        pytest.skip("this python-hcl2 does not keep comments")
    star = []
    for doc in raw:
        for entry in doc.get("data", []):
            for type_, named in entry.items():
                if unquote(type_) != "aws_iam_policy_document":
                    continue
                for body in named.values():
                    for st in body.get("statement", []):
                        if '"*"' in st.get("resources", []):
                            star.append((st.get("sid"), bool(st.get("__comments__"))))
    assert star and all(commented for _, commented in star), star


def _statement(sid: str) -> dict[str, Any]:
    found = [st for _, st in policy_statements(module(MODULE_DIR)) if st.get("sid") == sid]
    assert len(found) == 1, f"{sid}: {len(found)} statements"
    return found[0]


def test_iam_writes_are_scoped_to_this_cluster() -> None:
    drain = _statement("DrainContainerInstances")
    assert drain["actions"] == ["ecs:UpdateContainerInstancesState"]
    assert [c["variable"] for c in blocks(drain, "condition")] == ["ecs:cluster"]
    assert blocks(drain, "condition")[0]["values"] == ["${aws_ecs_cluster.this.arn}"]
    assert all("container-instance/${var.cluster}/" in r for r in drain["resources"])

    asg = _statement("ManagePoolInstances")
    assert set(asg["actions"]) == {
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:SetDesiredCapacity",
    }
    assert set(_statement("RollPools")["actions"]) == {"autoscaling:UpdateAutoScalingGroup", "autoscaling:TerminateInstanceInAutoScalingGroup"}
    assert asg["resources"] == "${local.asg_arns}"
    assert "aws_autoscaling_group.pool" in module(MODULE_DIR).locals["asg_arns"]
    assert _statement("RollPools")["resources"] == "${local.asg_arns}"

    assert _statement("NewTemplateVersion")["resources"] == ["${aws_launch_template.this.arn}"]
    assert "ec2:CreateLaunchTemplateVersion" in _statement("NewTemplateVersion")["actions"]
    assert _statement("StateTable")["resources"] == ["${aws_dynamodb_table.state.arn}"]
    assert set(_statement("StateTable")["actions"]) == {f"dynamodb:{a}" for a in ("BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem")}
    assert _statement("ReadAmiParameter")["resources"] == ["${statement.value}"]
    assert "parameter%s" in module(MODULE_DIR).locals["ami_parameter_arn"]
    passrole = _statement("PassInstanceRole")
    assert [c["variable"] for c in blocks(passrole, "condition")] == ["iam:PassedToService"]
    listed, tagged = _statement("DeregisterListedTargets"), _statement("DeregisterTaggedTargets")
    assert listed["actions"] == tagged["actions"] == ["elasticloadbalancing:DeregisterTargets"]
    assert listed["resources"] == "${statement.value}"
    (cond,) = blocks(tagged, "condition")
    assert (cond["test"], cond["variable"], cond["values"]) == ("StringEquals", "aws:ResourceTag/ecsspot:cluster", ["${var.cluster}"])
    assert tagged["resources"] == ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*"]
    drain_statements = [st for where, st in policy_statements(module(MODULE_DIR)) if "DeregisterTargets" in str(st.get("actions"))]
    assert sorted(drain_statements, key=lambda st: st["sid"]) == [listed, tagged]  # no unscoped DeregisterTargets anywhere
    assert "elasticloadbalancing:DescribeTargetHealth" in _statement("DescribeWithoutResourceLevelPermissions")["actions"]


#: The ecsspot modules each Lambda's code path runs (refresh reads the cluster through
#: store.load_cluster and resolves the AMI parameter like ami.resolve; its tick also runs the
#: drain watchdog, the capacity ledger and the protection reconciler).
HANDLER_MODULES = {
    "interruption": ("interruption", "drain", "store", "handlers"),
    "refresh": ("refresh", "interruption", "drain", "store", "watchdog", "protection", "ledger", "fallback"),
}
HANDLER_EXTRA_CALLS = {"interruption": set(), "refresh": {("ssm", "get_parameter")}}
_CALL = re.compile(r'"(autoscaling|dynamodb|ec2|ecs|elbv2|iam|sqs|ssm)",\s*"([a-z0-9_]+)"')
_IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
#: APIs authorised by other actions: SQS has no ...Batch IAM actions, and a DynamoDB transaction's
#: "Put, Update, Delete, and Get actions are governed by the permissions used for the underlying
#: PutItem, UpdateItem, DeleteItem, and GetItem operations"
#: (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
_IAM_ACTIONS = {
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "dynamodb:TransactWriteItems": {"dynamodb:PutItem", "dynamodb:DeleteItem"},
}


def role_actions(mod: Module, document: str) -> set[str]:
    """Every action a policy document allows, with the documents it sources."""
    body = mod.data[("aws_iam_policy_document", document)]
    actions = {a for st in blocks(body, "statement") + dynamic_contents(body, "statement") for a in as_list(st.get("actions", []))}
    for source in as_list(body.get("source_policy_documents", [])):
        match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", source)
        assert match, f"source_policy_documents: {source!r}"
        actions |= role_actions(mod, match.group(1))
    return actions


#: What a role needs beyond the calls its code makes: the Lambda service uses the role to write
#: logs and to poll the queue; Auto Scaling checks refresh's right to launch from the new template
#: version (RunInstances, tagging on launch, passing the instance role).
HANDLER_INDIRECT_ACTIONS = {
    "interruption": {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"},
    "refresh": {"logs:CreateLogStream", "logs:PutLogEvents", "ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"},
}


def handler_calls(handler: str) -> set[str]:
    sources = [REPO / "ecsspot" / f"{name}.py" for name in HANDLER_MODULES[handler]]
    if not all(p.is_file() for p in sources):
        pytest.skip("the handlers' modules are not all there yet")
    calls = {c for p in sources for c in _CALL.findall(p.read_text(encoding="utf-8"))} | HANDLER_EXTRA_CALLS[handler]
    actions = {f"{_IAM_PREFIX.get(svc, svc)}:{''.join(w.capitalize() for w in op.split('_'))}" for svc, op in calls}
    return {needed for a in actions for needed in _IAM_ACTIONS.get(a, {a})}


@pytest.mark.parametrize("handler", sorted(HANDLER_MODULES))
def test_lambda_roles_allow_every_call_the_handlers_make(handler: str) -> None:
    needed = handler_calls(handler)
    assert len(needed) >= 10
    assert needed - role_actions(module(MODULE_DIR), handler) == set()


@pytest.mark.parametrize("handler", sorted(HANDLER_MODULES))
def test_lambda_roles_allow_nothing_the_handlers_never_call(handler: str) -> None:
    unused = role_actions(module(MODULE_DIR), handler) - handler_calls(handler) - HANDLER_INDIRECT_ACTIONS[handler]
    assert unused == set()


def test_queue_accepts_only_this_clusters_rules() -> None:
    for name in ("events_queue", "dead_letter_queue"):
        (st,) = blocks(module(MODULE_DIR).data[("aws_iam_policy_document", name)], "statement")
        assert st["actions"] == ["sqs:SendMessage"]
        assert blocks(st, "principals")[0]["identifiers"] == ["events.amazonaws.com"]
        (cond,) = blocks(st, "condition")
        assert (cond["test"], cond["variable"], cond["values"]) == ("ArnEquals", "aws:SourceArn", "${local.instance_rule_arns}")


def test_lambda_handlers_and_configuration() -> None:
    mod = module(MODULE_DIR)
    functions = mod.of_type("aws_lambda_function")
    assert {f["handler"] for f in functions.values()} == LAMBDA_HANDLERS
    assert mod.variables["lambda_runtime"]["default"] == "python3.11"
    for name, fn in functions.items():
        assert fn["runtime"] == "${var.lambda_runtime}"
        assert fn["filename"] == "${var.lambda_package}"
        assert blocks(fn, "environment")[0]["variables"] == "${local.lambda_environment}"
        assert f"aws_cloudwatch_log_group.{name}" in str(fn.get("depends_on"))
        assert mod.resources[("aws_cloudwatch_log_group", name)]["retention_in_days"] == "${var.log_retention_days}"
    assert functions["interruption"]["timeout"] == 900
    assert functions["interruption"]["reserved_concurrent_executions"] == "${var.interruption_reserved_concurrency}"
    for key in ("ECSSPOT_CLUSTER", "ECSSPOT_TABLE"):
        assert key in mod.locals["lambda_environment"]


def test_event_wiring() -> None:
    mod = module(MODULE_DIR)
    patterns = mod.locals["instance_event_patterns"]
    assert {k: (p["source"], p["detail-type"]) for k, p in patterns.items()} == {
        "spot": (["aws.ec2"], ["EC2 Spot Instance Interruption Warning"]),
        "rebalance": (["aws.ec2"], ["EC2 Instance Rebalance Recommendation"]),
        "lifecycle": (["aws.autoscaling"], ["EC2 Instance-terminate Lifecycle Action"]),
    }
    assert "local.asg_names" in patterns["lifecycle"]["detail"]["AutoScalingGroupName"]
    assert mod.resources[("aws_cloudwatch_event_target", "instance")]["arn"] == "${aws_sqs_queue.events.arn}"
    ami_rule = mod.resources[("aws_cloudwatch_event_rule", "ami_parameter")]["event_pattern"]
    assert "Parameter Store Change" in ami_rule and "aws.ssm" in ami_rule and "local.ami_parameter" in ami_rule
    assert mod.resources[("aws_cloudwatch_event_target", "ami_parameter")]["arn"] == "${aws_lambda_function.refresh.arn}"
    assert mod.resources[("aws_cloudwatch_event_rule", "refresh_tick")]["schedule_expression"] == "${var.refresh_schedule}"
    assert mod.variables["refresh_schedule"]["default"] == "rate(5 minutes)"
    assert mod.resources[("aws_cloudwatch_event_target", "refresh_tick")]["arn"] == "${aws_lambda_function.refresh.arn}"
    queue = mod.resources[("aws_sqs_queue", "events")]
    assert queue["sqs_managed_sse_enabled"] is True and "aws_sqs_queue.dead_letter.arn" in queue["redrive_policy"]
    assert mod.resources[("aws_sqs_queue", "dead_letter")]["sqs_managed_sse_enabled"] is True
    mapping = mod.resources[("aws_lambda_event_source_mapping", "interruption")]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["event_source_arn"] == "${aws_sqs_queue.events.arn}"
    hook = mod.resources[("aws_autoscaling_lifecycle_hook", "drain")]
    assert (hook["lifecycle_transition"], hook["default_result"], hook["heartbeat_timeout"]) == (
        "autoscaling:EC2_INSTANCE_TERMINATING",
        "CONTINUE",
        "${var.lifecycle_timeout_seconds}",
    )


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_references_are_declared(directory: Path) -> None:
    mod = module(directory)
    values = [text for doc in mod.everything() for text in strings(doc)]
    refs = {
        "var": {m for t in values for m in _VAR.findall(t)} - set(mod.variables),
        "local": {m for t in values for m in _LOCAL.findall(t)} - set(mod.locals),
        "resource": {m for t in values for m in _RESOURCE.findall(t)} - set(mod.resources),
        "data": {m for t in values for m in _DATA.findall(t)} - set(mod.data),
        "module": {name for t in values for name, _ in _MODULE_OUTPUT.findall(t)} - set(mod.modules),
    }
    assert refs == {k: set() for k in refs}, f"undeclared references in {directory}"


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_outputs_reference_existing_objects(directory: Path) -> None:
    mod = module(directory)
    assert mod.outputs
    for name, out in mod.outputs.items():
        value = " ".join(strings(out.get("value")))
        targets = _RESOURCE.findall(value) + [("data." + t, n) for t, n in _DATA.findall(value)]
        targets += [("module", m) for m, _ in _MODULE_OUTPUT.findall(value)]
        assert targets or _LOCAL.search(value), f"output {name} refers to nothing"
        for type_, res in targets:
            known = (
                res in mod.modules if type_ == "module" else (type_[5:], res) in mod.data if type_.startswith("data.") else (type_, res) in mod.resources
            )
            assert known, f"output {name}: {type_}.{res} does not exist"


@pytest.mark.parametrize("directory", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_module_calls_match_the_module(directory: Path) -> None:
    example = module(directory)
    assert example.modules, f"{directory.name} does not use the module"
    for call_name, call in example.modules.items():
        target_dir = local_module_dir(example, call)
        assert target_dir == MODULE_DIR.resolve(), f"module.{call_name} should use the ecsspot module"
        target = module(target_dir)
        inputs = set(call) - {"source", "version", "providers", "count", "for_each", "depends_on"}
        assert inputs <= set(target.variables), f"module.{call_name}: unknown inputs {sorted(inputs - set(target.variables))}"
        required = {n for n, v in target.variables.items() if "default" not in v}
        assert required <= inputs, f"module.{call_name}: missing required inputs {sorted(required - inputs)}"
        used = {out for doc in example.everything() for t in strings(doc) for m, out in _MODULE_OUTPUT.findall(t) if m == call_name}
        assert used <= set(target.outputs), f"module.{call_name}: unknown outputs {sorted(used - set(target.outputs))}"


def test_asg_uses_an_explicit_launch_template_version() -> None:
    mod = module(MODULE_DIR)
    groups = mod.of_type("aws_autoscaling_group")
    assert groups
    for name, group in groups.items():
        specs = [
            spec
            for policy in blocks(group, "mixed_instances_policy")
            for template in blocks(policy, "launch_template")
            for spec in blocks(template, "launch_template_specification")
        ] + blocks(group, "launch_template")
        assert specs, f"aws_autoscaling_group.{name} has no launch template"
        for spec in specs:
            match = re.fullmatch(r"\$\{aws_launch_template\.(\w+)\.latest_version\}", str(spec.get("version")))
            assert match and ("aws_launch_template", match.group(1)) in mod.resources, f"aws_autoscaling_group.{name}: version {spec.get('version')!r}"
        assert blocks(group, "lifecycle")[0]["ignore_changes"] == ["desired_capacity"]
    for directory in MODULE_DIRS:
        for doc in module(directory).everything():
            assert not [t for t in strings(doc) if "$Latest" in t or "$Default" in t]


def test_asg_matches_ecsspot_apply() -> None:
    mod = module(MODULE_DIR)
    group = mod.resources[("aws_autoscaling_group", "pool")]
    (dist,) = blocks(blocks(group, "mixed_instances_policy")[0], "instances_distribution")
    assert set(dist) == {
        "on_demand_base_capacity",
        "on_demand_percentage_above_base_capacity",
        "spot_allocation_strategy",
        "on_demand_allocation_strategy",
    }
    assert group["protect_from_scale_in"] == "${each.value.managed_termination_protection}"
    assert group["vpc_zone_identifier"] == "${var.subnets}"
    assert group["capacity_rebalance"] == "${local.capacity_rebalance[each.key]}"
    tags = {t["key"]: (t["value"], t["propagate_at_launch"]) for t in blocks(group, "tag")}
    assert tags == {"ecsspot:cluster": ("${var.cluster}", True), "ecsspot:pool": ("${each.key}", True), "AmazonECSManaged": ("", True)}
    by_type, by_attributes = dynamic_contents(blocks(blocks(group, "mixed_instances_policy")[0], "launch_template")[0], "override")
    assert "weighted_capacity" in by_type
    # The requirements override sets every field ecsspot apply can send (InstanceRequirements.to_api).
    (requirements,) = blocks(by_attributes, "instance_requirements")
    spec_mod = pytest.importorskip("ecsspot.spec")
    full = spec_mod.InstanceRequirements(
        spec_mod.Range(1, 2), spec_mod.Range(1, 2), ("amd",), ("current",), local_storage_types=("ssd",), allowed_instance_types=("m5.*",),
        spot_max_price_percentage_over_lowest_price=1, on_demand_max_price_percentage_over_lowest_price=1,
    )
    sent = {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower() for k in {*full.to_api(), "MaxSpotPriceAsPercentageOfOptimalOnDemandPrice", "ExcludedInstanceTypes"}}
    sent = {"vcpu_count" if k == "v_cpu_count" else "memory_mib" if k == "memory_mi_b" else k for k in sent}
    assert set(requirements) == sent
    assert group["mixed_instances_policy"][0]["instances_distribution"][0]["on_demand_allocation_strategy"] == "${local.on_demand_allocation_strategy[each.key]}"


def test_launch_template_matches_ecsspot_apply() -> None:
    lt = module(MODULE_DIR).resources[("aws_launch_template", "this")]
    (meta,) = blocks(lt, "metadata_options")
    assert meta["http_tokens"] == "required"
    assert meta["http_put_response_hop_limit"] == "${var.metadata_hop_limit}"
    (bdm,) = blocks(lt, "block_device_mappings")
    (ebs,) = blocks(bdm, "ebs")
    assert (bdm["device_name"], ebs["volume_type"], ebs["volume_size"]) == ("/dev/xvda", "gp3", "${var.root_volume_gib}")
    assert lt["image_id"] == "${data.external.ami.result.image_id}"
    assert lt["user_data"] == "${data.external.user_data.result.user_data_base64}"
    assert dynamic_contents(lt, "iam_instance_profile")
    assert any(t["resource_type"] == "instance" and t["tags"] == "${local.tags}" for t in blocks(lt, "tag_specifications"))
    assert module(MODULE_DIR).locals["cluster_tags"] == {"ecsspot:cluster": "${var.cluster}"}


def test_capacity_providers_and_table_match_ecsspot_apply() -> None:
    mod = module(MODULE_DIR)
    cp = mod.resources[("aws_ecs_capacity_provider", "pool")]
    (provider,) = blocks(cp, "auto_scaling_group_provider")
    assert "ENABLED" in provider["managed_termination_protection"] and "DISABLED" in provider["managed_termination_protection"]
    assert "ENABLED" in provider["managed_draining"]
    (scaling,) = blocks(provider, "managed_scaling")
    assert set(scaling) == {"status", "target_capacity", "minimum_scaling_step_size", "maximum_scaling_step_size", "instance_warmup_period"}
    strategy = mod.resources[("aws_ecs_cluster_capacity_providers", "this")]
    (default,) = dynamic_contents(strategy, "default_capacity_provider_strategy")
    assert set(default) == {"capacity_provider", "base", "weight"}
    table = mod.resources[("aws_dynamodb_table", "state")]
    assert (table["billing_mode"], table["hash_key"], table["range_key"]) == ("PAY_PER_REQUEST", "pk", "sk")
    assert {(a["name"], a["type"]) for a in blocks(table, "attribute")} == {("pk", "S"), ("sk", "S")}
    assert blocks(table, "ttl")[0] == {"attribute_name": "expires_at", "enabled": True}
    assert blocks(table, "point_in_time_recovery")[0] == {"enabled": True}
    item = mod.resources[("aws_dynamodb_table_item", "settings")]["item"]
    assert 'pk = {S = "cluster"}' in item and 'sk = {S = "settings"}' in item and "jsonencode(local.settings)" in item


def _render(template: str, cluster: str, pool: str = "") -> str:
    return template.replace("${var.cluster}", cluster).replace("${each.key}", pool).replace("${name}", pool)


def test_names_match_ecsspot_apply() -> None:
    spec_mod = pytest.importorskip("ecsspot.spec")
    spec = spec_mod.load_spec(REPO / "examples" / "demo-api.yaml")
    mod = module(MODULE_DIR)
    assert _render(mod.resources[("aws_ecs_cluster", "this")]["name"], spec.cluster) == spec.cluster
    assert _render(mod.resources[("aws_launch_template", "this")]["name"], spec.cluster) == spec.launch_template_name
    assert _render(mod.resources[("aws_dynamodb_table", "state")]["name"], spec.cluster) == spec.table_name
    assert mod.resources[("aws_autoscaling_lifecycle_hook", "drain")]["name"] == spec_mod.LIFECYCLE_HOOK_NAME
    assert mod.resources[("aws_autoscaling_group", "pool")]["name"] == "${local.asg_names[each.key]}"
    assert mod.resources[("aws_ecs_capacity_provider", "pool")]["name"] == "${local.capacity_provider_names[each.key]}"
    asg_default = re.search(r'"(\$\{var\.cluster\}-\$\{name\})"', mod.locals["asg_names"])
    cp_name = re.search(r'"(\$\{var\.cluster\}-\$\{name\})"', mod.locals["capacity_provider_names"])
    assert asg_default and cp_name and "p.asg_name" in mod.locals["asg_names"]
    for pool in spec.pools:
        assert _render(asg_default.group(1), spec.cluster, pool.name) == spec.asg_name(pool)
        assert _render(cp_name.group(1), spec.cluster, pool.name) == spec.capacity_provider_name(pool)


_OPTIONAL = re.compile(r"(\w+)\s*=\s*optional\((?:number|string|bool),\s*(\"[^\"]*\"|[^(),]+)\)")


def _hcl_literal(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return int(text)


def test_defaults_match_the_spec() -> None:
    spec_mod = pytest.importorskip("ecsspot.spec")
    import attrs

    mod = module(MODULE_DIR)
    pool_defaults = {k: _hcl_literal(v) for k, v in _OPTIONAL.findall(mod.variables["pools"]["type"])}
    expected: dict[str, Any] = {}
    for cls in (spec_mod.Pool, spec_mod.ManagedScaling, spec_mod.InstanceType):
        for f in attrs.fields(cls):
            if f.name in pool_defaults and not isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
                expected[f.name] = f.default
    assert expected and {k: pool_defaults[k] for k in expected} == expected
    assert set(expected) >= {"min_size", "on_demand_percentage_above_base", "spot_allocation_strategy", "target_capacity", "weight"}
    drain, refresh, inst = spec_mod.Drain(), spec_mod.Refresh(), attrs.fields_dict(spec_mod.Instances)
    variables = {name: v.get("default") for name, v in mod.variables.items()}
    assert variables["drain_deadline_seconds"] == drain.deadline_seconds
    assert variables["lifecycle_timeout_seconds"] == drain.lifecycle_timeout_seconds
    assert variables["refresh_batch_size"] == str(refresh.batch_size)
    assert variables["refresh_min_healthy_percent"] == refresh.min_healthy_percent
    assert variables["refresh_timeout_seconds"] == refresh.timeout_seconds
    assert variables["root_volume_gib"] == inst["root_volume_gib"].default
    assert variables["metadata_hop_limit"] == inst["metadata_hop_limit"].default == 1
    assert variables["ami"] == "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    strategy_defaults = {k: _hcl_literal(v) for k, v in _OPTIONAL.findall(mod.variables["strategy"]["type"])}
    assert strategy_defaults == {"base": spec_mod.StrategyItem("x").base, "weight": spec_mod.StrategyItem("x").weight}


def test_variables_are_documented() -> None:
    for directory in MODULE_DIRS:
        for name, var in module(directory).variables.items():
            assert var.get("description"), f"{directory.name}: variable {name} has no description"
            assert "type" in var, f"{directory.name}: variable {name} has no type"
        for name, out in module(directory).outputs.items():
            assert out.get("description"), f"{directory.name}: output {name} has no description"


def test_readme_lists_every_variable_and_output() -> None:
    readme = (TERRAFORM / "README.md").read_text(encoding="utf-8")
    mod = module(MODULE_DIR)
    missing = [n for n in [*mod.variables, *mod.outputs] if f"`{n}`" not in readme]
    assert missing == []


def test_example_alb_service() -> None:
    ex = module(TERRAFORM / "examples" / "alb-service")
    tg = ex.resources[("aws_lb_target_group", "web")]
    (hc,) = blocks(tg, "health_check")
    assert (tg["target_type"], tg["deregistration_delay"]) == ("instance", 30)
    assert (hc["matcher"], hc["interval"], hc["healthy_threshold"]) == ("200-399", 10, 2)
    container_definitions = ex.resources[("aws_ecs_task_definition", "web")]
    assert container_definitions["network_mode"] == "bridge"
    assert re.search(r"containerPort\s*=\s*80,\s*hostPort\s*=\s*0", container_definitions["container_definitions"])
    service = ex.resources[("aws_ecs_service", "web")]
    assert (service["deployment_minimum_healthy_percent"], service["deployment_maximum_percent"]) == (50, 200)
    strategy = {s["capacity_provider"]: (s["base"], s["weight"]) for s in blocks(service, "capacity_provider_strategy")}
    assert strategy == {
        '${module.ecsspot.capacity_provider_names["on-demand"]}': (1, 1),
        '${module.ecsspot.capacity_provider_names["spot"]}': (0, 3),
    }
    assert blocks(service, "load_balancer")[0]["container_port"] == 80
    listeners = ex.of_type("aws_lb_listener")
    assert listeners["https"]["count"] == "${local.https ? 1 : 0}" and listeners["http_redirect"]["count"] == "${local.https ? 1 : 0}"
    assert listeners["http_forward"]["count"] == "${local.https ? 0 : 1}"
    assert listeners["https"]["certificate_arn"] == "${var.certificate_arn}"
