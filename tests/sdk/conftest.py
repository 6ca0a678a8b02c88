"""Starts a real `cts serve` for the SDK tests and signs ingest requests with the SDK's own signer."""

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkcts.v3 import CtsClient

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY = "SDKTESTACCESSKEY0001"
SECRET_KEY = "sdk-test-secret-key-0123456789abcdefghij"
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DOMAIN_ID = "f9e8d7c6b5a4938271605f4e3d2c1b0a"


def cts_binary() -> str:
    return os.environ.get("CTS_BIN", str(REPO / "target" / "debug" / "cts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_certificate(directory: str) -> tuple:
    """A certificate for 127.0.0.1 and its key (PEM files), made with the openssl command."""
    cert, key = str(Path(directory, "cert.pem")), str(Path(directory, "key.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert, "-days", "1"], check=True, capture_output=True)
    return cert, key


class Server:
    def __init__(self, tls: bool = False):
        self.data_dir = tempfile.mkdtemp(prefix="cts-sdk-")
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        self.endpoint = f"{self.scheme}://127.0.0.1:{self.port}"
        env = dict(os.environ,
                   CTS_ADMIN_ACCESS_KEY=ACCESS_KEY, CTS_ADMIN_SECRET_KEY=SECRET_KEY,
                   CTS_PROJECT_ID=PROJECT_ID, CTS_DOMAIN_ID=DOMAIN_ID)
        # The CA bundle clients verify the server with (the certificate itself), or True for plain HTTP.
        self.verify = True
        if tls:
            self.verify, key = self_signed_certificate(self.data_dir)
            env.update(CTS_TLS_CERT=self.verify, CTS_TLS_KEY=key)
        self.log = open(Path(self.data_dir) / "serve.log", "w")
        self.process = subprocess.Popen(
            [cts_binary(), "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cts serve exited: {Path(self.data_dir, 'serve.log').read_text()}")
            try:
                if requests.get(f"{self.endpoint}/health", timeout=1, verify=self.verify).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("cts serve did not become healthy")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def client(self, secret_key: str = SECRET_KEY) -> CtsClient:
        return self.client_for(ACCESS_KEY, secret_key, PROJECT_ID)

    def signed(self, method: str, path: str, body: bytes = b"", secret_key: str = SECRET_KEY) -> requests.Response:
        """Sends a request signed by huaweicloudsdkcore's Signer, as the SDK signs its own calls."""
        headers = {"Content-Type": "application/json"}
        request = SdkRequest(method=method, schema=self.scheme, host=f"127.0.0.1:{self.port}",
                             resource_path=path, query_params=[], header_params=headers, body=body)
        Signer(BasicCredentials(ACCESS_KEY, secret_key, PROJECT_ID)).sign(request)
        return requests.request(method, self.endpoint + request.uri, headers=request.header_params,
                                data=request.body, timeout=30, verify=self.verify)

    def admin(self, *args: str):
        """Runs `cts admin` on the server's data directory and returns its JSON output."""
        output = subprocess.run([cts_binary(), "admin", "--data-dir", self.data_dir, *args],
                                capture_output=True, text=True, check=True)
        return json.loads(output.stdout)

    def client_for(self, access_key: str, secret_key: str, project_id: str) -> CtsClient:
        credentials = BasicCredentials(access_key, secret_key, project_id)
        builder = CtsClient.new_builder().with_credentials(credentials).with_endpoints([self.endpoint])
        if self.scheme == "https":
            config = HttpConfig.get_default_config()
            config.ssl_ca_cert = self.verify
            builder = builder.with_http_config(config)
        return builder.build()

    def ingest(self, traces: list) -> dict:
        response = self.signed("POST", f"/v3/{PROJECT_ID}/traces", json.dumps({"traces": traces}).encode())
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def server():
    server = Server()
    yield server
    server.stop()
