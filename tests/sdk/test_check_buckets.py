"""CheckObsBuckets through the SDK against the S3-compatible store the suite runs (Garage, see scripts/garage.sh)."""

import os

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcts.v3 import CheckBucketRequest, CheckObsBucketsRequest, CheckObsBucketsRequestBody

from conftest import DOMAIN_ID, PROJECT_ID


def check(server, *names, domain_id=DOMAIN_ID):
    buckets = [CheckBucketRequest(bucket_name=name, bucket_location="ap-southeast-3") for name in names]
    request = CheckObsBucketsRequest(domain_id=domain_id, body=CheckObsBucketsRequestBody(buckets=buckets))
    return server.client().check_obs_buckets(request).buckets


def test_each_bucket_gets_its_own_result(server):
    existing = os.environ["CTS_TEST_BUCKET"]
    results = {bucket.bucket_name: bucket for bucket in check(server, existing, "cts-no-such-bucket", "Bad_Name")}
    ok = results[existing].check_bucket_response
    assert (ok.success, ok.response_code) == (True, 200)
    assert results[existing].bucket_location == "ap-southeast-3"
    missing = results["cts-no-such-bucket"].check_bucket_response
    assert (missing.success, missing.response_code, missing.error_code) == (False, 404, "NoSuchBucket")
    invalid = results["Bad_Name"].check_bucket_response
    assert (invalid.success, invalid.response_code, invalid.error_code) == (False, 400, "CTS.0231")


def test_the_path_must_be_the_callers_domain(server):
    with pytest.raises(ClientRequestException) as refused:
        check(server, os.environ["CTS_TEST_BUCKET"], domain_id=PROJECT_ID)
    assert (refused.value.status_code, refused.value.error_code) == (403, "CTS.0013")


def test_an_empty_list_is_refused(server):
    request = CheckObsBucketsRequest(domain_id=DOMAIN_ID, body=CheckObsBucketsRequestBody(buckets=[]))
    with pytest.raises(ClientRequestException) as refused:
        server.client().check_obs_buckets(request)
    assert (refused.value.status_code, refused.value.error_code) == (400, "CTS.0003")
