"""User data renders the mandatory lines, round-trips, and reads other people's scripts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ecsspot import userdata


def test_render_has_mandatory_lines_and_round_trips() -> None:
    text = userdata.render("demo", {"ECS_LOGLEVEL": "info"})
    assert "ECS_CLUSTER=demo\n" in text and "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true\n" in text
    assert "ECS_CONTAINER_STOP_TIMEOUT=1m\n" in text
    parsed = userdata.parse(userdata.encode(text))
    assert parsed.ecs_config["ECS_CLUSTER"] == "demo"
    assert parsed.spot_draining and parsed.sets_lifecycle_attribute
    assert parsed.ecs_config["ECS_LOGLEVEL"] == "info"
    assert "instance-life-cycle" in text and "X-aws-ec2-metadata-token" in text  # IMDSv2 only


def test_rendering_is_byte_stable() -> None:
    a = userdata.render("demo", {"B": "2", "A": "1"}, "#cloud-config\npackages: [jq]\n")
    b = userdata.render("demo", {"B": "2", "A": "1"}, "#cloud-config\npackages: [jq]\n")
    assert a == b


def test_user_attributes_are_merged_with_lifecycle() -> None:
    text = userdata.render("demo", {"ECS_INSTANCE_ATTRIBUTES": '{"team": "api"}'})
    value = userdata.parse(text).ecs_config["ECS_INSTANCE_ATTRIBUTES"]
    assert value == '{"ecsspot.lifecycle":"$LIFECYCLE","team":"api"}'


def test_multipart_when_user_adds_cloud_init() -> None:
    text = userdata.render("demo", {}, "#cloud-config\npackages: [jq]\n")
    assert text.startswith("Content-Type: multipart/mixed")
    parsed = userdata.parse(userdata.encode(text))
    assert parsed.cluster == "demo" and parsed.spot_draining
    assert parsed.extra_parts == ("#cloud-config\npackages: [jq]\n",)


def test_parses_hand_written_scripts() -> None:
    script = "#!/bin/bash\necho ECS_CLUSTER=legacy >> /etc/ecs/ecs.config\necho 'ECS_LOGLEVEL=debug' >> /etc/ecs/ecs.config\n"
    parsed = userdata.parse(script)
    assert parsed.cluster == "legacy" and not parsed.spot_draining
    assert parsed.ecs_config == {"ECS_CLUSTER": "legacy", "ECS_LOGLEVEL": "debug"}


def test_garbage_is_not_a_crash() -> None:
    assert userdata.parse(b"\xff\xfe not base64").ecs_config == {}
    assert userdata.parse("").ecs_config == {}


@given(
    st.from_regex(r"[a-zA-Z0-9_-]{1,40}", fullmatch=True),
    st.dictionaries(st.from_regex(r"ECS_[A-Z_]{1,12}", fullmatch=True).filter(lambda k: k not in ("ECS_CLUSTER", "ECS_ENABLE_SPOT_INSTANCE_DRAINING", "ECS_INSTANCE_ATTRIBUTES", "ECS_CONTAINER_STOP_TIMEOUT")), st.from_regex(r"[a-z0-9:/.]{0,20}", fullmatch=True), max_size=5),
)
def test_round_trip_property(cluster: str, config: dict[str, str]) -> None:
    parsed = userdata.parse(userdata.encode(userdata.render(cluster, config)))
    assert parsed.cluster == cluster
    for key, value in config.items():
        assert parsed.ecs_config[key] == value
