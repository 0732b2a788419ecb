#!/bin/sh
# Lab 05: call a Knative function through the mesh's ingress gateway, as
# `curl -H 'Host: HOST' http://NODE:31080/` would (the nodes have python3, not curl).
# `sh call.sh HOST` prints how long the request took, in seconds, then the answer.
# The gateway's address is computed: this node's InternalIP and the gateway's NodePort.
set -eu
HOST=${1:?usage: sh call.sh HOST, e.g. sh call.sh hello.lab05.knative.internal}
NODE_IP=$(kubectl get node "$(hostname)" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
PORT=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="http2")].nodePort}')
exec python3 - "http://$NODE_IP:$PORT/" "$HOST" <<'PYTHON'
import sys
import time
import urllib.request

url, host = sys.argv[1:]
start = time.perf_counter()
with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host}), timeout=120) as answer:
    body = answer.read().decode().strip()
print(f"{time.perf_counter() - start:.3f} {body}")
PYTHON
