"""Roles and tenant isolation through the SDK: keys made with `cts admin` for two projects, one of each role."""

import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcts.v3 import (CreateTrackerRequest, CreateTrackerRequestBody, DataBucket, ListQuotasRequest,
                                  ListTracesRequest, ListTrackersRequest)

from conftest import PROJECT_ID

ROLES = ("admin", "auditor", "reporter")


def eventually(call):
    """The server reloads identities each second: retry while the new key is still unknown (CTS.0002)."""
    deadline = time.time() + 10
    while True:
        try:
            return call()
        except ClientRequestException as error:
            if error.error_code != "CTS.0002" or time.time() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def tenants(server):
    """Two projects of a new domain, each with a key of every role: {project_name: (project_id, {role: key})}."""
    server.admin("domain", "create", "tenants")
    tenants = {}
    for project_name in ("tenant-a", "tenant-b"):
        project = server.admin("project", "create", "--domain", "tenants", project_name)
        keys = {}
        for role in ROLES:
            user = f"{project_name}-{role}"
            server.admin("user", "create", "--domain", "tenants", "--role", role, user)
            keys[role] = server.admin("key", "create", "--user", user, "--project", project["id"])
        tenants[project_name] = (project["id"], keys)
    return tenants


def client(server, key, project_id):
    return server.client_for(key["access_key"], key["secret_key"], project_id)


def create_tracker_request(name):
    bucket = DataBucket(data_bucket_name=f"{name}-bucket", data_event=["READ"])
    return CreateTrackerRequest(body=CreateTrackerRequestBody(tracker_type="data", tracker_name=name,
                                                              data_bucket=bucket))


# (call, the roles allowed to make it)
CALLS = [
    ("list_traces", lambda c: c.list_traces(ListTracesRequest(trace_type="system")), {"admin", "auditor"}),
    ("list_trackers", lambda c: c.list_trackers(ListTrackersRequest()), {"admin", "auditor"}),
    ("list_quotas", lambda c: c.list_quotas(ListQuotasRequest()), {"admin", "auditor"}),
    ("create_tracker", lambda c: c.create_tracker(create_tracker_request("roles-tracker")), {"admin"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,call,allowed", CALLS, ids=[name for name, _, _ in CALLS])
def test_each_role_is_allowed_exactly_its_calls(server, tenants, role, name, call, allowed):
    project_id, keys = tenants["tenant-a"]
    sdk = client(server, keys[role], project_id)
    if role in allowed:
        eventually(lambda: call(sdk))
    else:
        with pytest.raises(ClientRequestException) as refused:
            eventually(lambda: call(sdk))
        assert (refused.value.status_code, refused.value.error_code) == (403, "CTS.0013")


@pytest.mark.parametrize("role", ROLES)
def test_no_key_reaches_another_project(server, tenants, role):
    _, keys = tenants["tenant-a"]
    other_project, _ = tenants["tenant-b"]
    for project_id in (other_project, PROJECT_ID):
        sdk = client(server, keys[role], project_id)
        for name, call, _ in CALLS:
            with pytest.raises(ClientRequestException) as refused:
                eventually(lambda: call(sdk))
            assert refused.value.status_code == 403, name
            assert refused.value.error_code == "CTS.0013", name
            assert project_id not in refused.value.error_msg, "the refusal does not echo the other project"


def test_tenant_data_stays_in_its_project(server, tenants):
    a_project, a_keys = tenants["tenant-a"]
    b_project, b_keys = tenants["tenant-b"]
    admin_a = client(server, a_keys["admin"], a_project)
    eventually(lambda: admin_a.create_tracker(create_tracker_request("only-in-a")))
    names_b = [t.tracker_name for t in eventually(
        lambda: client(server, b_keys["auditor"], b_project).list_trackers(ListTrackersRequest())).trackers]
    assert "only-in-a" not in names_b
    names_a = [t.tracker_name for t in client(server, a_keys["auditor"], a_project).list_trackers(
        ListTrackersRequest()).trackers]
    assert "only-in-a" in names_a
