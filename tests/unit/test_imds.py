"""The launch template's IMDS hop limit: 1 unless the spec opts in to 2 (issue 9, item 14)."""

from __future__ import annotations

from ecsspot import load_spec
from ecsspot.plan import desired_template_data
from tests.conftest import example_spec_dict


def hop_limit(**instances: object) -> int:
    d = example_spec_dict()
    d["instances"].update(instances)
    return desired_template_data(load_spec(d), "ami-123")["MetadataOptions"]["HttpPutResponseHopLimit"]


def test_hop_limit_is_one_by_default() -> None:
    # 2 would let any container in bridge mode fetch the instance role's credentials.
    assert hop_limit() == 1


def test_hop_limit_two_is_an_opt_in() -> None:
    assert hop_limit(metadata_hop_limit=2) == 2
