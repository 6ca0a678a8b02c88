"""Trackers, tags, quotas and operations through the official SDK (huaweicloudsdkcts) against a real `cts serve`.

Each call goes through `CtsClient`, so paths, methods, bodies, signatures and
the typed responses (`TrackerResponseBody`, `ObsInfo`, `CtsQuota`,
`ListOperation`) are exercised as a Huawei Cloud user would; errors arrive as
`ClientRequestException` with the CTS error code.
"""

import time
import uuid

import pytest
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcts.v3 import (
    BatchCreateResourceTagsRequest, BatchCreateResourceTagsRequestBody, BatchDeleteResourceTagsRequest,
    BatchDeleteResourceTagsRequestBody, CreateTrackerRequest, CreateTrackerRequestBody, CreateTrackerResponse, DataBucket,
    DeleteTrackerRequest, ListOperationsRequest, ListQuotasRequest, ListTracesRequest, ListTrackersRequest,
    ManagementEventSelector, Tags, TrackerObsInfo, UpdateTrackerRequest, UpdateTrackerRequestBody,
)

from conftest import DOMAIN_ID, PROJECT_ID


@pytest.fixture
def client(server):
    """A client on a project without data trackers (and none left behind)."""
    client = server.client()
    client.delete_tracker(DeleteTrackerRequest())
    yield client
    client.delete_tracker(DeleteTrackerRequest())


def data_tracker(name: str, **changes) -> CreateTrackerRequest:
    fields = dict(
        tracker_type="data", tracker_name=name,
        obs_info=TrackerObsInfo(bucket_name="trace-files", file_prefix_name="orders", is_obs_created=False,
                                bucket_lifecycle=30, compress_type="gzip", is_sort_by_service=True),
        data_bucket=DataBucket(data_bucket_name="watched-bucket", data_event=["WRITE"]),
    )
    fields.update(changes)
    return CreateTrackerRequest(body=CreateTrackerRequestBody(**fields))


def update(**fields) -> UpdateTrackerRequest:
    return UpdateTrackerRequest(body=UpdateTrackerRequestBody(**fields))


def error_of(call) -> exceptions.ClientRequestException:
    with pytest.raises(exceptions.ClientRequestException) as caught:
        call()
    return caught.value


def trackers(client, **filters) -> list:
    return client.list_trackers(ListTrackersRequest(**filters)).trackers


def test_the_system_tracker_exists_from_the_start(client):
    [system] = trackers(client)
    assert (system.tracker_type, system.tracker_name, system.status) == ("system", "system", "enabled")
    assert (system.project_id, system.domain_id) == (PROJECT_ID, DOMAIN_ID)
    uuid.UUID(system.id)
    assert system.create_time > 1_700_000_000_000


def test_create_list_update_delete(client):
    created = client.create_tracker(data_tracker("orders"))
    assert created.status_code == 201
    assert (created.tracker_type, created.tracker_name, created.status) == ("data", "orders", "enabled")
    assert (created.project_id, created.domain_id) == (PROJECT_ID, DOMAIN_ID)
    obs = created.obs_info
    assert (obs.bucket_name, obs.file_prefix_name, obs.bucket_lifecycle, obs.compress_type, obs.is_sort_by_service,
            obs.is_obs_created) == ("trace-files", "orders", 30, "gzip", True, False)
    assert (created.data_bucket.data_bucket_name, created.data_bucket.data_event) == ("watched-bucket", ["WRITE"])

    [listed] = trackers(client, tracker_name="orders", tracker_type="data")
    fields = CreateTrackerResponse.openapi_types
    assert {k: getattr(listed, k) for k in fields} == {k: getattr(created, k) for k in fields}
    assert [t.tracker_name for t in trackers(client)] == ["system", "orders"]

    # Only the fields sent change: status alone keeps obs_info and data_bucket.
    client.update_tracker(update(tracker_type="data", tracker_name="orders", status="disabled"))
    [disabled] = trackers(client, tracker_name="orders")
    assert disabled.status == "disabled"
    assert disabled.obs_info.to_dict() == listed.obs_info.to_dict()
    assert disabled.data_bucket.to_dict() == listed.data_bucket.to_dict()
    client.update_tracker(update(tracker_type="data", tracker_name="orders",
                                 obs_info=TrackerObsInfo(compress_type="json"), is_lts_enabled=True))
    [updated] = trackers(client, tracker_name="orders")
    assert (updated.obs_info.compress_type, updated.obs_info.bucket_name, updated.lts.is_lts_enabled) == \
        ("json", "trace-files", True)
    assert updated.status == "disabled"

    client.update_tracker(update(tracker_type="system", tracker_name="system", is_support_trace_files_encryption=True,
                                 kms_id="kms-key-1", management_event_selector=ManagementEventSelector(["KMS"])))
    [system] = trackers(client, tracker_type="system")
    assert (system.is_support_trace_files_encryption, system.kms_id) == (True, "kms-key-1")
    assert system.management_event_selector.exclude_service == ["KMS"]

    deleted = client.delete_tracker(DeleteTrackerRequest(tracker_name="orders", tracker_type="data"))
    assert deleted.status_code == 204
    assert [t.tracker_name for t in trackers(client)] == ["system"]


@pytest.mark.parametrize("request_, status, code", [
    (CreateTrackerRequest(body=CreateTrackerRequestBody(tracker_type="system", tracker_name="system")), 400, "CTS.0201"),
    (data_tracker("x", tracker_type="audit"), 400, "CTS.0202"),
    (data_tracker("_orders"), 400, "CTS.0203"),
    (data_tracker("o" * 33), 400, "CTS.0203"),
    (update(tracker_type="system", tracker_name="main", status="enabled"), 400, "CTS.0204"),
    (update(tracker_type="system", tracker_name="system", status="stopped"), 400, "CTS.0205"),
    (update(tracker_type="system", tracker_name="system", data_bucket=DataBucket("watched-bucket", ["READ"])),
     400, "CTS.0206"),
    (data_tracker("system"), 400, "CTS.0207"),
    (update(tracker_type="data", tracker_name="nothing", status="enabled"), 404, "CTS.0214"),
    (data_tracker("x", obs_info=TrackerObsInfo(bucket_name="trace-files", file_prefix_name="a/b")), 400, "CTS.0218"),
    (data_tracker("x", obs_info=TrackerObsInfo(bucket_name="Trace_Files")), 400, "CTS.0231"),
    (data_tracker("x", data_bucket=DataBucket("ab", ["READ"])), 400, "CTS.0231"),
    (data_tracker("x", obs_info=TrackerObsInfo(bucket_name="trace-files", bucket_lifecycle=7)), 400, "CTS.0003"),
    (data_tracker("x", obs_info=TrackerObsInfo(bucket_name="trace-files", compress_type="zip")), 400, "CTS.0003"),
    (data_tracker("x", data_bucket=DataBucket("watched-bucket", ["DELETE"])), 400, "CTS.0003"),
    (update(tracker_type="system", tracker_name="system", kms_id=""), 400, "CTS.0003"),
    (DeleteTrackerRequest(tracker_name="system", tracker_type="system"), 400, "CTS.0202"),
    (DeleteTrackerRequest(tracker_name="nothing"), 404, "CTS.0214"),
    (ListTrackersRequest(tracker_type="audit"), 400, "CTS.0202"),
])
def test_errors_reach_the_sdk_with_their_cts_code(client, request_, status, code):
    call = {
        CreateTrackerRequest: client.create_tracker, UpdateTrackerRequest: client.update_tracker,
        DeleteTrackerRequest: client.delete_tracker, ListTrackersRequest: client.list_trackers,
    }[type(request_)]
    error = error_of(lambda: call(request_))
    assert (error.status_code, error.error_code) == (status, code), error.error_msg
    assert error.error_msg


def test_an_existing_name_and_the_quota(client):
    client.create_tracker(data_tracker("orders"))
    assert error_of(lambda: client.create_tracker(data_tracker("orders"))).error_code == "CTS.0208"
    for i in range(99):
        client.create_tracker(data_tracker(f"t{i}"))
    assert error_of(lambda: client.create_tracker(data_tracker("one-more"))).error_code == "CTS.0200"
    quotas = {q.type: (q.used, q.quota) for q in client.list_quotas(ListQuotasRequest()).resources}
    assert quotas == {"system_tracker": (1, 1), "data_tracker": (100, 100), "smn_notification": (0, 100)}
    # No name: every data tracker goes, the system tracker stays.
    client.delete_tracker(DeleteTrackerRequest())
    assert [t.tracker_name for t in trackers(client)] == ["system"]
    quotas = {q.type: q.used for q in client.list_quotas(ListQuotasRequest()).resources}
    assert quotas["data_tracker"] == 0


def test_tags_on_a_tracker(client):
    tracker_id = client.create_tracker(data_tracker("orders")).id
    created = client.batch_create_resource_tags(BatchCreateResourceTagsRequest(
        resource_id=tracker_id, resource_type="cts-tracker",
        body=BatchCreateResourceTagsRequestBody(tags=[Tags("env", "prod"), Tags("team", "pay")])))
    assert created.status_code == 204
    deleted = client.batch_delete_resource_tags(BatchDeleteResourceTagsRequest(
        resource_id=tracker_id, resource_type="cts-tracker",
        body=BatchDeleteResourceTagsRequestBody(tags=[Tags("team")])))
    assert deleted.status_code == 204

    bad_key = error_of(lambda: client.batch_create_resource_tags(BatchCreateResourceTagsRequest(
        resource_id=tracker_id, resource_type="cts-tracker",
        body=BatchCreateResourceTagsRequestBody(tags=[Tags("a*b", "x")]))))
    assert (bad_key.status_code, bad_key.error_code) == (400, "CTS.0003")
    unknown = error_of(lambda: client.batch_create_resource_tags(BatchCreateResourceTagsRequest(
        resource_id=str(uuid.uuid4()), resource_type="cts-tracker",
        body=BatchCreateResourceTagsRequestBody(tags=[Tags("env", "prod")]))))
    assert (unknown.status_code, unknown.error_code) == (404, "CTS.0214")


def test_list_operations(client):
    groups = client.list_operations(ListOperationsRequest()).operations
    by_key = {(g.service_type, g.resource_type): g.operation_list for g in groups}
    assert len(by_key) == len(groups)
    assert by_key[("marketplace", "Order")] == ["createOrder", "cancelOrder", "queryOrderList", "queryOrderDetail",
                                                "renewOrder", "changeOrder"]
    assert sum(len(ops) for (service, _), ops in by_key.items() if service == "marketplace") == 21
    [trackers_group] = client.list_operations(ListOperationsRequest(service_type="CTS", resource_type="tracker")).operations
    assert "createTracker" in trackers_group.operation_list
    error = error_of(lambda: client.list_operations(ListOperationsRequest(resource_type="Order")))
    assert (error.status_code, error.error_code) == (400, "CTS.0300")


def test_data_traces_are_listed_under_their_tracker(server, client):
    client.create_tracker(data_tracker("orders"))
    now = time.time_ns() // 1_000_000
    sent = [
        {"trace_id": str(uuid.uuid4()), "trace_name": "PutObject", "service_type": "OBS", "resource_type": "object",
         "trace_type": "ObsAPI", "tracker_name": tracker, "time": now - n, "user": {"name": "alice"}}
        for n, tracker in enumerate(["orders", "orders", "billing"])
    ]
    ingested = server.ingest(sent)
    assert [(r["index"], r["error_code"]) for r in ingested["rejected"]] == [(2, "CTS.0214")]
    listed = client.list_traces(ListTracesRequest(trace_type="data", tracker_name="orders", _from=now - 60_000,
                                                  to=now + 1000, limit=200)).traces
    assert {t.trace_id for t in listed} == {sent[0]["trace_id"], sent[1]["trace_id"]}
    assert all(t.trace_type == "ObsAPI" for t in listed)
