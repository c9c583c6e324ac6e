"""Doctor: the live wiring of a cluster checked end to end, each finding with how to fix it.

ecsspot only protects requests if every link from EC2 to the drain is there: the EventBridge rules
that catch spot warnings, rebalance recommendations and ecsspot's terminate lifecycle actions
(with patterns that match those events for *this* cluster's groups), their target (the events
queue), a queue policy that lets those rules send, a dead-letter queue, the event source mapping
that hands the queue to the interruption function with partial batch failures, the schedule that
ticks the refresh function, the ``ecsspot-drain`` hook on every pool, and user data that turns on
the agent's spot draining. A missing link fails silently in production: events go nowhere and
instances die with their requests. The names are the Terraform module's (``ecsspot-<cluster>-*``,
``--prefix`` for another deployment).

Patterns are checked with EventBridge's own ``TestEventPattern`` against a sample of each event as
AWS sends it, naming this cluster's groups, rather than by comparing JSON: any pattern that
catches the events passes. The decisions are pure (:func:`diagnose`); :func:`examine` reads.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Call, Report, Sleep, Workflow, call, lookup
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec
from ecsspot.userdata import SPOT_DRAINING_KEY, parse

Status = Literal["ok", "fail"]
#: The instance events each rule must catch (the module's rule name suffix → detail-type).
INSTANCE_RULES = {
    "spot": "EC2 Spot Instance Interruption Warning",
    "rebalance": "EC2 Instance Rebalance Recommendation",
    "lifecycle": "EC2 Instance-terminate Lifecycle Action",
}
_NOT_FOUND = ("ResourceNotFoundException",)
_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


@attrs.frozen
class Finding:
    code: str
    status: Status
    #: What was checked, naming the resource.
    subject: str
    detail: str = ""
    #: How to fix it (empty when ok).
    fix: str = ""


@attrs.frozen
class DoctorReport:
    cluster: str
    prefix: str
    findings: tuple[Finding, ...]

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == "fail")


def module_prefix(cluster: str) -> str:
    """The Terraform module's name prefix (``local.prefix`` in terraform/main.tf)."""
    short = cluster if len(cluster) <= 40 else f"{cluster[:31]}-{hashlib.sha1(cluster.encode(), usedforsecurity=False).hexdigest()[:8]}"
    return f"ecsspot-{short}"


@attrs.frozen
class Rule:
    name: str
    arn: str | None = None
    state: str | None = None
    pattern: str | None = None
    schedule: str | None = None
    targets: tuple[str, ...] = ()
    #: Whether the pattern matched each sample event (EventBridge's TestEventPattern).
    matched: tuple[bool, ...] = ()


@attrs.frozen
class Wiring:
    """What :func:`examine` read."""

    rules: Mapping[str, Rule]
    queue_name: str
    queue_arn: str | None = None
    queue_policy: Mapping[str, Any] | None = None
    redrive_policy: Mapping[str, Any] | None = None
    #: The queue's event source mappings: (function ARN, state, response types).
    mappings: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    #: Group → names of its TERMINATING lifecycle hooks (None: the group does not exist).
    hooks: Mapping[str, tuple[str, ...] | None] = attrs.field(factory=dict)
    #: Group → the spot draining setting of the user data it launches with (None: none found).
    spot_draining: Mapping[str, str | None] = attrs.field(factory=dict)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def queue_policy_allows(policy: Mapping[str, Any] | None, queue_arn: str, rule_arn: str) -> bool:
    """Whether a queue policy lets EventBridge send to the queue on behalf of ``rule_arn``: an
    Allow for the ``events.amazonaws.com`` service (or everyone) of ``sqs:SendMessage`` on the
    queue, with no condition or an ``aws:SourceArn`` condition the rule meets."""
    for st in (policy or {}).get("Statement", ()):
        if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        services = _listed(principal.get("Service", [])) if isinstance(principal, Mapping) else []
        if principal != "*" and "events.amazonaws.com" not in services:
            continue
        if not any(fnmatch.fnmatchcase("sqs:SendMessage", a) for a in _listed(st.get("Action", [])) if isinstance(a, str)):
            continue
        if not any(fnmatch.fnmatchcase(queue_arn, r) for r in _listed(st.get("Resource", "*")) if isinstance(r, str)):
            continue
        conditions = st.get("Condition") or {}
        if all(_condition_met(op, keys, rule_arn) for op, keys in conditions.items()):
            return True
    return False


def _condition_met(operator: str, keys: Any, rule_arn: str) -> bool:
    if not isinstance(keys, Mapping):
        return False
    for key, values in keys.items():
        wanted = [v for v in _listed(values) if isinstance(v, str)]
        if key.lower() == "aws:sourceaccount":
            if not (operator in ("StringEquals", "StringLike") and any(fnmatch.fnmatchcase(rule_arn.split(":")[4], v) for v in wanted)):
                return False
            continue
        if key.lower() != "aws:sourcearn":
            return False  # a condition on something else: not something the doctor can vouch for
        if operator in ("ArnEquals", "StringEquals"):
            ok = rule_arn in wanted
        elif operator in ("ArnLike", "StringLike"):
            ok = any(fnmatch.fnmatchcase(rule_arn, v) for v in wanted)
        else:
            return False
        if not ok:
            return False
    return True


def diagnose(spec: ClusterSpec, prefix: str, wiring: Wiring) -> tuple[Finding, ...]:
    """Every finding, in the order events travel (pure)."""
    out: list[Finding] = []
    queue = wiring.queue_arn
    for key, detail_type in INSTANCE_RULES.items():
        rule = wiring.rules[key]
        subject = f"rule {rule.name}"
        if rule.arn is None:
            out.append(Finding("DR101", "fail", subject, f"missing: {detail_type} events reach nothing", "apply the Terraform module (or create the rule)"))
            continue
        if rule.state != "ENABLED":
            out.append(Finding("DR101", "fail", subject, f"state {rule.state}: {detail_type} events reach nothing", f"aws events enable-rule --name {rule.name}"))
            continue
        out.append(Finding("DR101", "ok", subject, "exists and is enabled"))
        if rule.matched and all(rule.matched):
            out.append(Finding("DR102", "ok", subject, f"its pattern matches {detail_type} events of this cluster"))
        else:
            missed = "every sample" if not any(rule.matched) else f"{rule.matched.count(False)} of {len(rule.matched)} samples"
            out.append(
                Finding("DR102", "fail", subject, f"its pattern misses {missed} of {detail_type} (this cluster's groups, hook {LIFECYCLE_HOOK_NAME})", "re-apply the module's pattern")
            )
        if queue is not None and queue in rule.targets:
            out.append(Finding("DR103", "ok", subject, f"targets the events queue {wiring.queue_name}"))
        else:
            out.append(Finding("DR103", "fail", subject, f"does not target the events queue {wiring.queue_name} (targets: {', '.join(rule.targets) or 'none'})", "put the queue back as the rule's target"))
    if queue is None:
        out.append(Finding("DR104", "fail", f"queue {wiring.queue_name}", "missing: the rules have nowhere to send", "apply the Terraform module"))
    else:
        out.append(Finding("DR104", "ok", f"queue {wiring.queue_name}", "exists"))
        for key in INSTANCE_RULES:
            rule = wiring.rules[key]
            if rule.arn is None:
                continue
            if queue_policy_allows(wiring.queue_policy, queue, rule.arn):
                out.append(Finding("DR105", "ok", f"queue {wiring.queue_name}", f"its policy lets rule {rule.name} send"))
            else:
                out.append(
                    Finding("DR105", "fail", f"queue {wiring.queue_name}", f"its policy does not let rule {rule.name} send (EventBridge drops the events)", "allow sqs:SendMessage to events.amazonaws.com for the rule's ARN")
                )
        if (wiring.redrive_policy or {}).get("deadLetterTargetArn"):
            out.append(Finding("DR106", "ok", f"queue {wiring.queue_name}", f"dead-letters to {wiring.redrive_policy['deadLetterTargetArn'] if wiring.redrive_policy else ''}"))
        else:
            out.append(Finding("DR106", "fail", f"queue {wiring.queue_name}", "no dead-letter queue: a message failing every retry is deleted", "set a RedrivePolicy"))
        good = [m for m in wiring.mappings if m[1] == "Enabled" and "ReportBatchItemFailures" in m[2]]
        if good:
            out.append(Finding("DR107", "ok", f"queue {wiring.queue_name}", f"handed to {good[0][0]} with partial batch failures"))
        else:
            found = "; ".join(f"{f} {s} {list(t)}" for f, s, t in wiring.mappings) or "none"
            out.append(
                Finding("DR107", "fail", f"queue {wiring.queue_name}", f"no enabled event source mapping with ReportBatchItemFailures (found: {found})", "create or enable the mapping to the interruption function")
            )
    tick = wiring.rules["tick"]
    if tick.arn is None or tick.state != "ENABLED" or not tick.targets:
        why = "missing" if tick.arn is None else (f"state {tick.state}" if tick.state != "ENABLED" else "without a target")
        out.append(Finding("DR108", "fail", f"rule {tick.name}", f"{why}: no refresh ticks (the watchdog, the ledger and resumed refreshes wait)", "apply the Terraform module"))
    else:
        out.append(Finding("DR108", "ok", f"rule {tick.name}", f"ticks {tick.schedule or ''} to {tick.targets[0]}".replace("  ", " ")))
    for pool in spec.pools:
        group = spec.asg_name(pool)
        hooks = wiring.hooks.get(group)
        if hooks is None:
            out.append(Finding("DR201", "fail", f"group {group}", "missing", "ecsspot apply"))
        elif LIFECYCLE_HOOK_NAME in hooks:
            out.append(Finding("DR201", "ok", f"group {group}", f"has the {LIFECYCLE_HOOK_NAME} hook"))
        else:
            out.append(Finding("DR201", "fail", f"group {group}", f"no {LIFECYCLE_HOOK_NAME} hook: scale-in and refresh terminate without a drain", "ecsspot apply"))
        draining = wiring.spot_draining.get(group)
        if hooks is not None and draining == "true":
            out.append(Finding("DR202", "ok", f"group {group}", f"launches with {SPOT_DRAINING_KEY}=true"))
        elif hooks is not None:
            shown = "not set" if draining is None else f"={draining}"
            out.append(Finding("DR202", "fail", f"group {group}", f"launches with {SPOT_DRAINING_KEY} {shown}", "ecsspot apply (the launch template's user data sets it)"))
    return tuple(out)


def sample_events(spec: ClusterSpec, region: str, account: str) -> dict[str, list[dict[str, Any]]]:
    """For each instance rule, the events it must catch as EventBridge delivers them (every
    field TestEventPattern requires), one per pool for the lifecycle action."""

    def event(source: str, detail_type: str, detail: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": detail_type,
            "source": source,
            "account": account,
            "time": "2026-12-01T00:00:00Z",
            "region": region,
            "resources": [f"arn:aws:ec2:{region}:{account}:instance/i-1234567890abcdef0"],
            "detail": dict(detail),
        }

    lifecycle = [
        event(
            "aws.autoscaling",
            INSTANCE_RULES["lifecycle"],
            {
                "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                "AutoScalingGroupName": spec.asg_name(p),
                "LifecycleHookName": LIFECYCLE_HOOK_NAME,
                "EC2InstanceId": "i-1234567890abcdef0",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            },
        )
        for p in spec.pools
    ]
    return {
        "spot": [event("aws.ec2", INSTANCE_RULES["spot"], {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"})],
        "rebalance": [event("aws.ec2", INSTANCE_RULES["rebalance"], {"instance-id": "i-1234567890abcdef0"})],
        "lifecycle": lifecycle,
    }


def examine(
    cluster: str, *, prefix: str | None = None, spec: ClusterSpec | None = None, send_test_event: bool = False, wait_seconds: float = 60.0
) -> Workflow[DoctorReport]:
    """Read the cluster's wiring and diagnose it (reads only, unless ``send_test_event``: then a
    marked test message goes through the events queue and the handler must record it within
    ``wait_seconds``)."""
    spec = yield from store.recorded_spec(cluster, spec)
    yield Report("doctor", f"reading the event wiring of cluster {cluster}")
    prefix = prefix or module_prefix(cluster)
    names = {key: f"{prefix}-{key}" for key in (*INSTANCE_RULES, "tick")}
    groups = [spec.asg_name(p) for p in spec.pools]
    queue_name = f"{prefix}-events"
    first: tuple[Call, ...] = (
        *(lookup("events", "describe_rule", _NOT_FOUND, Name=n) for n in names.values()),
        *(lookup("events", "list_targets_by_rule", _NOT_FOUND, Rule=n) for n in names.values()),
        lookup("sqs", "get_queue_url", _NO_QUEUE, QueueName=queue_name),
        call("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=groups),
        # A group that is not there answers ValidationError: DR201 reports it missing.
        *(lookup("autoscaling", "describe_lifecycle_hooks", ("ValidationError",), AutoScalingGroupName=g) for g in groups),
    )
    answers = list((yield first))
    n = len(names)
    described, targeted = answers[:n], answers[n : 2 * n]
    url_answer, groups_answer, hook_answers = answers[2 * n], answers[2 * n + 1], answers[2 * n + 2 :]
    # The samples name the rules' own Region and account, as the events they must catch do.
    arn = next((str(d["Arn"]).split(":") for d in described if d and d.get("Arn")), None)
    samples = sample_events(spec, arn[3], arn[4]) if arn else {}

    tests: list[tuple[str, Call]] = [
        # A pattern EventBridge cannot read matches nothing: DR102, not a failed doctor.
        (key, lookup("events", "test_event_pattern", ("InvalidEventPatternException",), EventPattern=d["EventPattern"], Event=json.dumps(sample)))
        for key, d in zip(names, described, strict=True)
        if key in samples and d and d.get("EventPattern")
        for sample in samples[key]
    ]
    present = {g["AutoScalingGroupName"]: g for g in (groups_answer or {}).get("AutoScalingGroups", ())}
    templates = {g: _template_of(present[g]) for g in groups if g in present}
    wanted = sorted({t for t in templates.values() if t is not None})
    second: list[Call] = [c for _, c in tests]
    url = (url_answer or {}).get("QueueUrl")
    if url:
        second.append(call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn", "Policy", "RedrivePolicy"]))
    second += [call("ec2", "describe_launch_template_versions", LaunchTemplateId=t, Versions=[v]) for t, v in wanted]
    later = list((yield tuple(second))) if second else []
    matched: dict[str, list[bool]] = {key: [] for key in names}
    for (key, _), answer in zip(tests, later, strict=False):
        matched[key].append(bool((answer or {}).get("Result")))
    attributes = (later[len(tests)] or {}).get("Attributes", {}) if url else {}
    template_answers = later[len(tests) + (1 if url else 0) :]
    user_data = {}
    for (t, v), answer in zip(wanted, template_answers, strict=True):
        for version in (answer or {}).get("LaunchTemplateVersions", ()):
            user_data[(t, v)] = (version.get("LaunchTemplateData") or {}).get("UserData")
    queue_arn = attributes.get("QueueArn")
    mappings: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    if queue_arn:
        listed = yield call("lambda", "list_event_source_mappings", EventSourceArn=queue_arn)
        mappings = tuple(
            (str(m.get("FunctionArn", "")), str(m.get("State", "")), tuple(m.get("FunctionResponseTypes") or ())) for m in (listed or {}).get("EventSourceMappings", ())
        )
    rules = {
        key: Rule(
            name,
            arn=(d or {}).get("Arn"),
            state=(d or {}).get("State"),
            pattern=(d or {}).get("EventPattern"),
            schedule=(d or {}).get("ScheduleExpression"),
            targets=tuple(t.get("Arn", "") for t in (targets or {}).get("Targets", ())),
            matched=tuple(matched[key]),
        )
        for (key, name), d, targets in zip(names.items(), described, targeted, strict=True)
    }
    hooks = {
        g: (tuple(h["LifecycleHookName"] for h in (answer or {}).get("LifecycleHooks", ()) if h.get("LifecycleTransition") == "autoscaling:EC2_INSTANCE_TERMINATING") if g in present else None)
        for g, answer in zip(groups, hook_answers, strict=True)
    }
    draining = {}
    for g, template in templates.items():
        data = user_data.get(template) if template else None
        draining[g] = parse(data).ecs_config.get(SPOT_DRAINING_KEY) if data else None
    wiring = Wiring(
        rules,
        queue_name,
        queue_arn,
        _json(attributes.get("Policy")),
        _json(attributes.get("RedrivePolicy")),
        mappings,
        hooks,
        draining,
    )
    findings = [*diagnose(spec, prefix, wiring), *(yield from _delays(spec))]
    if send_test_event:
        findings.append((yield from _probe(spec, url, queue_name, wait_seconds)))
    return DoctorReport(cluster, prefix, tuple(findings))


def _delays(spec: ClusterSpec) -> Workflow[list[Finding]]:
    """DR203: the target groups' deregistration delays fit the spot notice (plan's ES204 lint on
    the cluster as it is)."""
    from ecsspot.lint import lint
    from ecsspot.observe import observe

    yield Report("doctor", f"reading the services and target groups of cluster {spec.cluster}")
    observed = yield from observe(spec)
    over = [w for w in lint(spec, observed) if w.code == "ES204"]
    if over:
        return [Finding("DR203", "fail", w.path.replace("target_group:", "target group "), w.message.split("; ")[0], w.message.split("; ", 1)[-1]) for w in over]
    return [Finding("DR203", "ok", f"cluster {spec.cluster}", f"{len(observed.target_groups)} target group(s): deregistration delay + stop timeout within the spot notice")]


PROBE_POLL_SECONDS = 2.0


def _probe(spec: ClusterSpec, url: str | None, queue_name: str, wait_seconds: float) -> Workflow[Finding]:
    """DR301: a clearly marked test message sent through the events queue, and the handler's
    record of it awaited in the state table (then removed)."""
    import uuid

    subject = f"queue {queue_name}"
    if not url:
        return Finding("DR301", "fail", subject, "no queue to send the test event through", "apply the Terraform module")
    probe = uuid.uuid4().hex
    start = yield NOW
    event = {
        "version": "0",
        "id": probe,
        "detail-type": "ecsspot doctor test event",
        "source": "ecsspot.doctor",
        "account": "000000000000",
        "time": datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": spec.region or "",
        "resources": [],
        "detail": {"cluster": spec.cluster, "probe": probe, "note": "sent by ecsspot doctor --send-test-event; the handler only records it"},
    }
    yield call("sqs", "send_message", QueueUrl=url, MessageBody=json.dumps(event))
    key = store.probe_key(probe)
    while True:
        now = yield NOW
        seen = store.document_of((yield store.get_document_call(spec.table_name, *key)))
        if seen is not None:
            yield from store.delete_document(spec.table_name, *key)
            return Finding("DR301", "ok", subject, f"the interruption handler recorded test event {probe} after {now - start:.0f} s")
        if now - start >= wait_seconds:
            return Finding(
                "DR301",
                "fail",
                subject,
                f"test event {probe} not recorded within {wait_seconds:.0f} s",
                "check the event source mapping, the interruption function's logs and its dead-letter queue (a function older than this CLI ignores the test event)",
            )
        yield Report("doctor", f"waiting for the interruption handler to record test event {probe} ({now - start:.0f} s)")
        yield Sleep(PROBE_POLL_SECONDS)


def _template_of(group: Mapping[str, Any]) -> tuple[str, str] | None:
    spec = group.get("LaunchTemplate") or ((group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    if not spec or not spec.get("LaunchTemplateId"):
        return None
    return str(spec["LaunchTemplateId"]), str(spec.get("Version") or "$Default")


def _json(text: Any) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
