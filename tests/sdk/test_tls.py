"""HTTPS: `cts serve` with CTS_TLS_CERT and CTS_TLS_KEY, and the official SDK verifying the certificate."""

import time

import pytest
import requests
from huaweicloudsdkcts.v3 import ListTracesRequest

from conftest import Server


@pytest.fixture(scope="module")
def tls_server():
    server = Server(tls=True)
    yield server
    server.stop()


def test_the_sdk_lists_traces_over_https(tls_server):
    now = int(time.time() * 1000)
    traces = [{"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order",
               "time": now - i, "user": {"name": "tls-user"}} for i in range(3)]
    assert len(tls_server.ingest(traces)["accepted"]) == 3
    answer = tls_server.client().list_traces(
        ListTracesRequest(trace_type="system", user="tls-user", _from=now - 60_000, to=now + 60_000, limit=10))
    assert [trace.user.name for trace in answer.traces] == ["tls-user"] * 3


def test_plain_http_and_unverified_certificates_are_refused(tls_server):
    plain = tls_server.endpoint.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/health", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_server.endpoint}/health", timeout=5)
