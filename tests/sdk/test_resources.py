"""ListTraceResources and ListUserResources through the official SDK against a real `cts serve`: the service
and resource types, and the users, of the project's own traces, as the typed `TraceResource` and `UserResource`."""

import time
import uuid

import pytest
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcts.v3 import ListTraceResourcesRequest, ListUserResourcesRequest, ListTraceResourcesResponse

from conftest import DOMAIN_ID, PROJECT_ID


@pytest.fixture(scope="module")
def seen(server):
    """Traces of a service and users no other test uses."""
    now = int(time.time() * 1000)
    suffix = uuid.uuid4().hex[:8]
    users = [f"resources_{suffix}_a", f"resources_{suffix}_b"]
    service = f"Svc{suffix}"
    traces = [
        {"trace_name": "createThing", "service_type": service, "resource_type": "thing", "time": now - 1000,
         "user": {"name": users[0]}},
        {"trace_name": "deleteWidget", "service_type": service, "resource_type": "widget", "time": now - 2000,
         "user": {"name": users[1]}},
        {"trace_name": "createThing", "service_type": service, "resource_type": "thing", "time": now - 3000},
    ]
    assert server.ingest(traces)["rejected"] == []
    return {"service": service, "users": users}


def test_trace_resources_are_the_service_and_resource_types_seen(server, seen):
    response = server.client().list_trace_resources(ListTraceResourcesRequest(domain_id=DOMAIN_ID))
    assert isinstance(response, ListTraceResourcesResponse)
    by_service = {r.service_type: r.resource for r in response.resources}
    assert by_service[seen["service"]] == ["thing", "widget"]
    services = [r.service_type for r in response.resources]
    assert services == sorted(services)


def test_user_resources_are_the_operators_seen(server, seen):
    users = [u.name for u in server.client().list_user_resources(ListUserResourcesRequest()).users]
    assert set(seen["users"]) <= set(users)
    assert users == sorted(set(users))


def test_trace_resources_answer_only_for_the_callers_domain(server, seen):
    for other in [PROJECT_ID, "0" * 32]:
        with pytest.raises(exceptions.ClientRequestException) as caught:
            server.client().list_trace_resources(ListTraceResourcesRequest(domain_id=other))
        assert (caught.value.status_code, caught.value.error_code) == (403, "CTS.0013")
