"""Key event notifications through the official SDK (huaweicloudsdkcts) against a real `cts serve`, and the
self-audit traces cts records of tracker and notification changes.

Every notification call goes through `CtsClient` (CreateNotification, UpdateNotification, DeleteNotification,
ListNotifications) and is checked through its typed response (`CreateNotificationResponse`,
`NotificationsResponseBody`, `Operations`, `NotificationUsers`, `Filter`); refusals arrive as
`ClientRequestException` with their CTS error code.
"""

import time

import pytest
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcts.v3 import (
    CreateNotificationRequest, CreateNotificationRequestBody, CreateNotificationResponse, CreateTrackerRequest,
    CreateTrackerRequestBody, DataBucket, DeleteNotificationRequest, DeleteTrackerRequest, Filter,
    ListNotificationsRequest, ListQuotasRequest, ListTracesRequest, NotificationUsers, Operations,
    UpdateNotificationRequest, UpdateNotificationRequestBody, UpdateTrackerRequest, UpdateTrackerRequestBody,
)

from conftest import ACCESS_KEY, PROJECT_ID

TOPIC = f"urn:smn:ap-southeast-3:{PROJECT_ID}:key_events"


def listed(client, **filters) -> list:
    return client.list_notifications(ListNotificationsRequest(notification_type="smn", **filters)).notifications


@pytest.fixture
def client(server):
    """A client on a project without notifications (and none left behind)."""
    client = server.client()

    def delete_all():
        ids = [n.notification_id for n in listed(client)]
        if ids:
            client.delete_notification(DeleteNotificationRequest(notification_id=",".join(ids)))

    delete_all()
    yield client
    delete_all()


def body(name: str, **changes) -> CreateNotificationRequestBody:
    fields = dict(
        notification_name=name, operation_type="customized",
        operations=[Operations(service_type="CTS", resource_type="tracker", trace_names=["createTracker", "deleteTracker"])],
        notify_user_list=[NotificationUsers(user_group="admins", user_list=["admin"])],
        topic_id=TOPIC,
        filter=Filter(condition="OR", is_support_filter=True, rule=["code != 200", "trace_rating = warning"]),
    )
    fields.update(changes)
    return CreateNotificationRequestBody(**fields)


def create(client, name: str, **changes):
    return client.create_notification(CreateNotificationRequest(body=body(name, **changes)))


def update(client, **fields):
    return client.update_notification(UpdateNotificationRequest(body=UpdateNotificationRequestBody(**fields)))


def error_of(call) -> exceptions.ClientRequestException:
    with pytest.raises(exceptions.ClientRequestException) as caught:
        call()
    return caught.value


def test_create_list_update_delete(client):
    created = create(client, "key_events")
    assert isinstance(created, CreateNotificationResponse)
    assert created.status_code == 201
    assert (created.notification_name, created.operation_type, created.status) == ("key_events", "customized", "enabled")
    assert (created.notification_type, created.project_id, created.topic_id) == ("smn", PROJECT_ID, TOPIC)
    assert created.create_time > 0 and len(created.notification_id) == 36
    assert created.operations[0].trace_names == ["createTracker", "deleteTracker"]
    assert created.notify_user_list[0].user_list == ["admin"]
    assert (created.filter.condition, created.filter.is_support_filter) == ("OR", True)
    assert created.filter.rule == ["code != 200", "trace_rating = warning"]

    [found] = listed(client)
    answered = created.to_json_object()
    assert found.to_dict() == {key: answered.get(key) for key in found.to_dict()}
    assert listed(client, notification_name="key_events")[0].notification_id == created.notification_id
    assert listed(client, notification_name="other") == []
    assert client.list_notifications(ListNotificationsRequest(notification_type="fun")).notifications == []

    # Partial update: only the status and the filter's condition change.
    updated = update(client, notification_id=created.notification_id, status="disabled",
                     filter=Filter(condition="AND", is_support_filter=True, rule=["code != 200"]))
    assert updated.status == "disabled"
    assert updated.filter.rule == ["code != 200"]
    assert updated.operations[0].to_dict() == created.operations[0].to_dict()
    assert (updated.topic_id, updated.create_time) == (created.topic_id, created.create_time)
    renamed = update(client, notification_id=created.notification_id, notification_name="renamed")
    assert (renamed.notification_name, renamed.status) == ("renamed", "disabled")

    second = create(client, "second", operation_type="complete", operations=None, notify_user_list=None, filter=None)
    assert second.operation_type == "complete" and second.operations == []
    quotas = {q.type: (q.used, q.quota) for q in client.list_quotas(ListQuotasRequest()).resources}
    assert quotas["smn_notification"] == (2, 100)
    client.delete_notification(DeleteNotificationRequest(notification_id=f"{created.notification_id},{second.notification_id}"))
    assert listed(client) == []


@pytest.mark.parametrize("make, status, code", [
    (lambda c: create(c, "existing"), 400, "CTS.0400"),
    (lambda c: create(c, "bad-name"), 400, "CTS.0003"),
    (lambda c: create(c, "n" * 65), 400, "CTS.0003"),
    (lambda c: create(c, "x", operation_type="some"), 400, "CTS.0003"),
    (lambda c: create(c, "x", operations=[]), 400, "CTS.0003"),
    (lambda c: create(c, "x", topic_id="urn:smn:ap-southeast-3:another-project:t"), 400, "CTS.0003"),
    (lambda c: create(c, "x", topic_id="urn:fss:ap-southeast-3:p:function:default:f"), 400, "CTS.0003"),
    (lambda c: create(c, "x", agency_name="someone"), 400, "CTS.0003"),
    (lambda c: create(c, "x", notify_user_list=[NotificationUsers(user_group=f"g{i}", user_list=[]) for i in range(11)]),
     400, "CTS.0003"),
    (lambda c: create(c, "x", filter=Filter(condition="AND", is_support_filter=True, rule=[f"code = {i}" for i in range(7)])),
     400, "CTS.0003"),
    (lambda c: create(c, "x", filter=Filter(condition="AND", is_support_filter=True, rule=["user = alice"])), 400, "CTS.0003"),
    (lambda c: create(c, "x", filter=Filter(condition="XOR", is_support_filter=True, rule=["code = 1"])), 400, "CTS.0003"),
    (lambda c: update(c, notification_id="00000000-0000-4000-8000-000000000000", status="disabled"), 404, "CTS.0404"),
    (lambda c: update(c, notification_id=listed(c)[0].notification_id, status="stopped"), 400, "CTS.0205"),
    (lambda c: c.delete_notification(DeleteNotificationRequest(notification_id="missing")), 404, "CTS.0404"),
    (lambda c: c.delete_notification(DeleteNotificationRequest()), 400, "CTS.0300"),
    (lambda c: c.list_notifications(ListNotificationsRequest(notification_type="email")), 400, "CTS.0300"),
])
def test_errors_reach_the_sdk_with_their_cts_code(client, make, status, code):
    create(client, "existing")
    error = error_of(lambda: make(client))
    assert (error.status_code, error.error_code) == (status, code), error.error_msg
    assert [n.notification_name for n in listed(client)] == ["existing"]


def test_the_101st_notification_is_refused(client):
    for i in range(100):
        create(client, f"n{i}", operation_type="complete", operations=None)
    error = error_of(lambda: create(client, "n100"))
    assert (error.status_code, error.error_code) == (400, "CTS.0200")


def test_tracker_and_notification_changes_are_self_audited(server, client):
    started = int(time.time() * 1000)
    client.create_tracker(CreateTrackerRequest(body=CreateTrackerRequestBody(
        tracker_type="data", tracker_name="audited",
        data_bucket=DataBucket(data_bucket_name="watched-bucket", data_event=["READ"]))))
    client.update_tracker(UpdateTrackerRequest(body=UpdateTrackerRequestBody(
        tracker_type="data", tracker_name="audited", status="disabled")))
    client.delete_tracker(DeleteTrackerRequest(tracker_name="audited", tracker_type="data"))
    created = create(client, "audited")
    update(client, notification_id=created.notification_id, status="disabled")
    client.delete_notification(DeleteNotificationRequest(notification_id=created.notification_id))
    error_of(lambda: create(client, "bad-name"))

    traces = client.list_traces(ListTracesRequest(
        trace_type="system", service_type="CTS", access_key_id=ACCESS_KEY, _from=started, limit=200)).traces
    by_name = {}
    for trace in traces:
        by_name.setdefault(trace.trace_name, []).append(trace)
    for name in ["createTracker", "updateTracker", "deleteTracker",
                 "createNotification", "updateNotification", "deleteNotification"]:
        trace = by_name[name][-1]
        assert (trace.source_ip, trace.user.name, trace.user.access_key_id) == ("127.0.0.1", "admin", ACCESS_KEY), name
        assert (trace.code, trace.trace_rating, trace.read_only) in [("200", "normal", False), ("201", "normal", False),
                                                                      ("204", "normal", False)], name
    assert by_name["deleteTracker"][0].resource_name == "audited"
    assert by_name["deleteNotification"][0].resource_id == created.notification_id
    refused = [t for t in by_name["createNotification"] if t.code == "400"]
    assert [(t.trace_rating, t.resource_name) for t in refused] == [("warning", "bad-name")]
