"""The official Huawei Cloud SDK (huaweicloudsdkcts) against a real `cts serve`.

5,000 traces go in over the ingest API (signed with the SDK's own signer); the
SDK's ListTraces then pages through them 200 at a time with `next`, and every
filter and several combinations are checked against the counts a plain Python
model of the data gives.
"""

import random
import time
import uuid

import pytest
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcts.v3 import ListTracesRequest

from conftest import PROJECT_ID

OPERATIONS = [
    ("Order", "createOrder"), ("Order", "cancelOrder"), ("Order", "queryOrderList"), ("Order", "queryOrderDetail"),
    ("Order", "renewOrder"), ("Order", "changeOrder"), ("Subscription", "unSubscribeByNegotiation"),
    ("Resource", "queryResourceDetail"), ("Resource", "setResourceStrategy"), ("Resource", "closeResource"),
    ("Resource", "querySaasResourceInstance"), ("Supervision", "submitRequirement"),
    ("Supervision", "confirmAcceptance"), ("Supervision", "queryDeliveryProcess"),
    ("PrivateOffer", "queryPrivateOfferList"), ("PrivateOffer", "queryPrivateOfferDetail"),
    ("Favorites", "addFavorites"), ("Favorites", "deleteFavorites"), ("Favorites", "queryFavorites"),
    ("AgreementSignRecord", "queryAgreementSignList"), ("AgreementSignRecord", "queryAgreementSignDetail"),
]
CTS_OPERATIONS = [("tracker", "createTracker"), ("tracker", "deleteTracker"), ("notification", "createNotification")]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
TOTAL = 5000
OLD = 200  # traces older than the default one-hour window


def rating(code: str) -> str:
    status = int(code)
    return "normal" if status < 400 else "warning" if status < 500 else "incident"


def make_traces(now_ms: int) -> list:
    rng = random.Random(20261124)
    traces = []
    for i in range(TOTAL):
        service, (resource_type, name) = ("CTS", rng.choice(CTS_OPERATIONS)) if i % 25 == 0 \
            else ("marketplace", rng.choice(OPERATIONS))
        user = rng.choice(USERS)
        code = "500" if i % 53 == 0 else "403" if i % 17 == 0 else "200"
        # Three traces share each millisecond, so ties are ordered by trace_id.
        age_ms = 3_600_000 + 60_000 + (i // 3) if i < OLD else 60_000 + (i // 3) * 600
        traces.append({
            "trace_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "trace_name": name, "service_type": service, "resource_type": resource_type,
            "resource_id": f"res-{rng.randrange(60):03d}", "resource_name": f"name-{rng.randrange(40)}",
            "trace_type": rng.choice(["ConsoleAction", "ApiCall"]),
            "source_ip": f"192.0.2.{rng.randrange(1, 255)}", "code": code,
            "enterprise_project_id": rng.choice(["0", "ep-finance", "ep-shop"]),
            "request": {"seq": i}, "response": {"ok": code == "200"},
            "time": now_ms - age_ms,
            "user": {"name": user, "id": f"id-{user}", "access_key_id": f"AK{user.upper()}",
                     "domain": {"id": "d-koo", "name": "koogallery"}, "type": "User"},
        })
    return traces


@pytest.fixture(scope="module")
def dataset(server):
    now_ms = int(time.time() * 1000)
    traces = make_traces(now_ms)
    for start in range(0, TOTAL, 1000):
        result = server.ingest(traces[start:start + 1000])
        assert result["rejected"] == []
        assert len(result["accepted"]) == 1000
    return {"now": now_ms, "traces": traces}


def page_all(client, **params):
    """Follows `marker` through every page; returns the traces in order."""
    found, marker = [], None
    for _ in range(TOTAL):
        response = client.list_traces(ListTracesRequest(trace_type="system", limit=200, next=marker, **params))
        assert response.meta_data.count == len(response.traces)
        assert len(response.traces) <= 200
        found.extend(response.traces)
        marker = response.meta_data.marker
        if marker is None:
            return found
    raise AssertionError("paging did not end")


def window(dataset):
    return {"_from": dataset["now"] - 3 * 3_600_000, "to": dataset["now"]}


def expected_ids(dataset, **filters):
    def matches(t):
        for key, value in filters.items():
            actual = {
                "user": t["user"]["name"], "access_key_id": t["user"]["access_key_id"],
                "trace_rating": rating(t["code"]),
            }.get(key, t.get(key))
            if actual != value:
                return False
        return True
    return {t["trace_id"] for t in dataset["traces"] if matches(t)}


def test_pages_through_every_trace_once_newest_first(server, dataset):
    found = page_all(server.client(), **window(dataset))
    ids = [t.trace_id for t in found]
    assert len(ids) == TOTAL
    assert len(set(ids)) == TOTAL
    assert set(ids) == {t["trace_id"] for t in dataset["traces"]}
    keys = [(t.time, t.trace_id) for t in found]
    assert keys == sorted(keys, reverse=True)


def test_returned_fields_match_what_was_ingested(server, dataset):
    sent = {t["trace_id"]: t for t in dataset["traces"]}
    for trace in page_all(server.client(), **window(dataset))[:300]:
        original = sent[trace.trace_id]
        assert trace.trace_name == original["trace_name"]
        assert trace.resource_type == original["resource_type"]
        assert trace.code == original["code"]
        assert trace.trace_rating == rating(original["code"])
        assert trace.time == original["time"]
        assert trace.record_time >= dataset["now"] - 60_000
        assert trace.user.name == original["user"]["name"]
        assert trace.user.domain.name == "koogallery"
        assert trace.read_only == original["trace_name"].startswith(("query", "list"))
        assert trace.request == '{"seq":%d}' % original["request"]["seq"]


def test_default_window_is_the_last_hour(server, dataset):
    found = page_all(server.client())
    sent = {t["trace_id"] for t in dataset["traces"]}
    # Besides what was ingested: cts's own traces of the ListTraces calls of this session (self-audit).
    own = [t for t in found if t.trace_id not in sent]
    assert all(t.service_type == "CTS" and t.trace_name == "listTraces" for t in own)
    assert len(found) - len(own) == TOTAL - OLD
    assert all(t.time >= dataset["now"] - 3_600_000 for t in found)


SINGLE_FILTERS = [
    {"service_type": "CTS"},
    {"user": "carol"},
    {"resource_id": "res-007"},
    {"resource_name": "name-12"},
    {"resource_type": "Supervision"},
    {"trace_name": "createOrder"},
    {"trace_rating": "warning"},
    {"trace_rating": "incident"},
    {"access_key_id": "AKDAVE"},
    {"enterprise_project_id": "ep-finance"},
]
COMBINED_FILTERS = [
    {"user": "alice", "trace_name": "queryOrderList"},
    {"resource_type": "Order", "trace_rating": "warning"},
    {"service_type": "marketplace", "user": "bob", "trace_rating": "normal"},
    {"access_key_id": "AKERIN", "resource_id": "res-001"},
    {"enterprise_project_id": "ep-shop", "resource_name": "name-3", "user": "frank"},
    {"user": "nobody"},
]


@pytest.mark.parametrize("filters", SINGLE_FILTERS + COMBINED_FILTERS, ids=lambda f: "+".join(f))
def test_filters_match_the_model(server, dataset, filters):
    found = page_all(server.client(), **window(dataset), **filters)
    ids = [t.trace_id for t in found]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_ids(dataset, **filters)
    keys = [(t.time, t.trace_id) for t in found]
    assert keys == sorted(keys, reverse=True)


def test_trace_id_overrides_the_other_filters(server, dataset):
    target = dataset["traces"][4321]
    response = server.client().list_traces(ListTracesRequest(
        trace_type="system", trace_id=target["trace_id"], user="someone-else", **window(dataset)))
    assert [t.trace_id for t in response.traces] == [target["trace_id"]]
    assert response.meta_data.marker is None


def test_retried_batch_is_not_stored_twice(server, dataset):
    again = server.ingest(dataset["traces"][:50])
    assert len(again["accepted"]) == 50
    assert len(page_all(server.client(), **window(dataset))) == TOTAL


def test_invalid_limit_is_a_cts_error(server, dataset):
    with pytest.raises(exceptions.ClientRequestException) as error:
        server.client().list_traces(ListTracesRequest(trace_type="system", limit=201))
    assert error.value.status_code == 400
    assert error.value.error_code == "CTS.0300"


def test_wrong_secret_key_is_refused(server, dataset):
    with pytest.raises(exceptions.ClientRequestException) as error:
        server.client(secret_key="not-the-secret").list_traces(ListTracesRequest(trace_type="system"))
    assert error.value.status_code == 401
    assert error.value.error_code == "CTS.0002"


def test_ingest_rejects_invalid_traces_one_by_one(server, dataset):
    # Ten hours old: outside every window the other tests look at.
    good = {"trace_name": "addFavorites", "service_type": "marketplace", "resource_type": "Favorites",
            "time": dataset["now"] - 10 * 3_600_000}
    bad = dict(good, trace_name="9lives")
    result = server.ingest([good, bad])
    assert len(result["accepted"]) == 1
    assert result["rejected"] == [{"index": 1, "error_code": "CTS.0003", "error_msg": result["rejected"][0]["error_msg"]}]
    assert "trace_name" in result["rejected"][0]["error_msg"]
