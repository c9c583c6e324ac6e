"""``-vv`` shows botocore's debug logs, never the credentials in them (issue 9, item 14)."""

from __future__ import annotations

from typing import Any

import pytest

from ecsspot_cli.main import redact

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN/recognisable+value=="


def test_vv_never_prints_the_session_token(aws: None, invoke: Any) -> None:
    # mock_aws puts fake keys of its own in the environment; the session token is ours.
    # botocore reads AWS_SECURITY_TOKEN first; the CLI tests' environment sets both.
    result = invoke("-vv", "status", "demo-api", env={"AWS_SESSION_TOKEN": SESSION_TOKEN, "AWS_SECURITY_TOKEN": SESSION_TOKEN})
    assert "CanonicalRequest" in result.stderr and "Sending http request" in result.stderr  # botocore's logs are there
    assert SESSION_TOKEN not in result.stderr
    assert "x-amz-security-token:<redacted>" in result.stderr
    assert "'X-Amz-Security-Token': b'<redacted>'" in result.stderr
    assert "'Authorization': b'<redacted>'" in result.stderr
    assert "Signature=" not in result.stderr.replace("Signature=<redacted>", "")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/ecs/aws4_request, Signature=ab'}", "AKIAIOSFODNN7EXAMPLE"),
        ("Signature:\n" + "a1" * 32, "a1" * 32),
        ("Response body:\nb'<Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey><SessionToken>IQoJb3</SessionToken>'", "wJalrXUtnFEMI"),
        ('{"Credentials": {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG", "SessionToken": "IQoJb3"}}', "wJalrXUtnFEMI"),
        ("https://s3/x?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2024&X-Amz-Security-Token=IQoJb3&X-Amz-Signature=ab12", "IQoJb3"),
    ],
)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "<redacted" in redact(text)
