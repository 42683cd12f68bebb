#!/usr/bin/env python3
"""The Python peer: the quick exporter users write instead of cdss-precheck-exporter.

prometheus_client + requests, one thread pool polling every cluster every interval with NCP
signature v2, the same metric names. Used only by scripts/bench/bench.sh for a side-by-side comparison;
it is a fair version of the usual script (pooled HTTP sessions, one per worker thread), not a
straw man.

Clusters are named and numbered as scripts/bench/gen-config.sh writes them: cluster-00001..N, numbers
1..N, regions rotating. Keys come from NCLOUD_ACCESS_KEY / NCLOUD_SECRET_KEY.

Usage: python_peer.py --clusters N --gateway http://127.0.0.1:PORT --port 9xxx [--interval 10]
"""

import argparse
import base64
import concurrent.futures
import hashlib
import hmac
import os
import threading
import time

import requests
from prometheus_client import Counter, Gauge, start_http_server

PATH = {
    "KR": "/api/v1/cluster/rollingRestartPreCheck",
    "SGN": "/api/sgn-v1/cluster/rollingRestartPreCheck",
    "JPN": "/api/jpn-v1/cluster/rollingRestartPreCheck",
    "GOV": "/api/v1/cluster/rollingRestartPreCheck",
    "FIN": "/api/v1/cluster/rollingRestartPreCheck",
}
REGIONS = ["KR", "SGN", "JPN", "GOV", "FIN"]

OK = Gauge("cdss_precheck_ok", "1 if the last precheck said ready", ["cluster", "region"])
DURATION = Gauge("cdss_precheck_duration_seconds", "Latency of the last precheck", ["cluster", "region"])
CODE = Gauge("cdss_precheck_last_error_code", "Code of the last precheck", ["cluster", "region"])
LAST_RUN = Gauge("cdss_precheck_last_run_timestamp_seconds", "When the last precheck finished", ["cluster", "region"])
RUNS = Counter("cdss_precheck_runs", "Prechecks finished", ["cluster", "region"])
FAILURES = Counter("cdss_precheck_failures", "Prechecks without an answer", ["cluster", "region", "reason"])

local = threading.local()


def session():
    if not hasattr(local, "s"):
        local.s = requests.Session()
    return local.s


def sign(secret, method, uri, ts, access_key):
    msg = f"{method} {uri}\n{ts}\n{access_key}".encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def precheck(gateway, access_key, secret, cluster):
    name, region, number = cluster
    uri = PATH[region]
    ts = str(int(time.time() * 1000))
    headers = {
        "x-ncp-apigw-timestamp": ts,
        "x-ncp-iam-access-key": access_key,
        "x-ncp-apigw-signature-v2": sign(secret, "POST", uri, ts, access_key),
        "Content-Type": "application/json",
    }
    started = time.monotonic()
    code, ok, reason = -1, 0, None
    try:
        r = session().post(gateway + uri, json={"serviceGroupInstanceNo": number}, headers=headers,
                           timeout=10, allow_redirects=False)
        body = r.json()
        if "error" in body:
            reason = "gateway_error"
            code = int(body["error"].get("errorCode", -1))
        else:
            code = int(body.get("code", -1))
            ok = 1 if code == 0 and body.get("result") is True else 0
            if code != 0:
                reason = "api_error"
    except requests.Timeout:
        reason = "timeout"
    except requests.RequestException:
        reason = "connection_error"
    except ValueError:
        reason = "invalid_response"
    OK.labels(name, region).set(ok)
    DURATION.labels(name, region).set(time.monotonic() - started)
    CODE.labels(name, region).set(code)
    LAST_RUN.labels(name, region).set(time.time())
    RUNS.labels(name, region).inc()
    if reason:
        FAILURES.labels(name, region, reason).inc()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clusters", type=int, required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    access_key = os.environ["NCLOUD_ACCESS_KEY"]
    secret = os.environ["NCLOUD_SECRET_KEY"]
    clusters = [(f"cluster-{i:05d}", REGIONS[i % 5], i) for i in range(1, a.clusters + 1)]
    for name, region, _ in clusters:
        OK.labels(name, region).set(0)
        RUNS.labels(name, region)
    start_http_server(a.port, addr="127.0.0.1")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=a.concurrency)
    while True:
        round_started = time.monotonic()
        list(pool.map(lambda c: precheck(a.gateway, access_key, secret, c), clusters))
        time.sleep(max(0.0, a.interval - (time.monotonic() - round_started)))


if __name__ == "__main__":
    main()
