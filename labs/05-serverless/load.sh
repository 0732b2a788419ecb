#!/bin/sh
# Lab 05: put a Knative function under load through the mesh's ingress gateway (as
# call.sh reaches it), and count its Ready pods meanwhile.
# `sh load.sh HOST CLIENTS SECONDS` keeps CLIENTS requests in flight for SECONDS (each
# client sends its next request when the last one is answered), polls the function's pods
# every 2 s, and prints one `pods SECONDS READY` line per poll, then `requests N`,
# `errors N` and `peak N` (the most Ready pods seen at once).
set -eu
HOST=${1:?usage: sh load.sh HOST CLIENTS SECONDS, e.g. sh load.sh cpu.lab05.knative.internal 8 120}
CLIENTS=${2:-8}
DURATION=${3:-120}
SERVICE=${HOST%%.*}
REST=${HOST#*.}
NAMESPACE=${REST%%.*}
NODE_IP=$(kubectl get node "$(hostname)" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
PORT=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="http2")].nodePort}')
exec python3 - "http://$NODE_IP:$PORT/?n=200000" "$HOST" "$CLIENTS" "$DURATION" "$SERVICE" "$NAMESPACE" <<'PYTHON'
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request

url, host, clients, duration, service, namespace = sys.argv[1:]
end = time.monotonic() + float(duration)
counts = {"requests": 0, "errors": 0}
lock = threading.Lock()


def client():
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host}), timeout=120) as answer:
                answer.read()
            outcome = "requests"
        except (OSError, http.client.HTTPException):
            outcome = "errors"
            time.sleep(1)
        with lock:
            counts[outcome] += 1


def ready_pods():
    listing = subprocess.run(
        ["kubectl", "-n", namespace, "get", "pods", "-l", f"serving.knative.dev/service={service}", "-o", "json"],
        capture_output=True, text=True, check=True,
    ).stdout
    return sum(
        1
        for pod in json.loads(listing)["items"]
        if not pod["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))
    )


threads = [threading.Thread(target=client, daemon=True) for _ in range(int(clients))]
for thread in threads:
    thread.start()
start, peak = time.monotonic(), 0
while any(thread.is_alive() for thread in threads):
    ready = ready_pods()
    peak = max(peak, ready)
    print(f"pods {time.monotonic() - start:.0f} {ready}", flush=True)
    time.sleep(2)
print(f"requests {counts['requests']}\nerrors {counts['errors']}\npeak {peak}")
PYTHON
