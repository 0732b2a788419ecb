"""Lab 03 checks: the cluster's state through the Kubernetes API (the Kubernetes client,
`nodes.api(path)`), and the files the steps leave on the control plane (testinfra)."""

from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab03"
DEPLOY = "/apis/apps/v1/namespaces/lab03/deployments/web"
PODS = "/api/v1/namespaces/lab03/pods?labelSelector=app%3Dweb"
STATIC = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _deployment(nodes):
    d = nodes.api(DEPLOY)
    assert d is not None, "there is no Deployment web in namespace lab03"
    return d


REPLICASETS = "/apis/apps/v1/namespaces/lab03/replicasets?labelSelector=app%3Dweb"


def _web_pods(nodes):
    return [p for p in nodes.api(PODS)["items"] if not p["metadata"].get("deletionTimestamp")]


def _settled(d, replicas):
    spec, status = d["spec"], d.get("status", {})
    assert spec.get("replicas") == replicas, why("the Deployment asks for {asked} replicas, not {replicas}", asked=spec.get("replicas"), replicas=replicas)
    assert status.get("observedGeneration", 0) >= d["metadata"].get("generation", 0), "the Deployment controller has not seen the last change yet"
    available = status.get("availableReplicas", 0)
    assert available == replicas, why("{available} of {replicas} replicas are available", available=available, replicas=replicas)


@check(
    "control_plane_static_pods",
    hint="`sudo ls /etc/kubernetes/manifests > ~/lab03/static-pods.txt` on the control plane (step 1; the folder is root-only), then find their mirror pods in kube-system.",
)
def control_plane_static_pods(nodes):
    listing = nodes.text(f"{DIR}/static-pods.txt")
    assert listing is not None, "~/lab03/static-pods.txt does not exist yet"
    for name in STATIC:
        assert f"{name}.yaml" in listing.split(), why("{name}.yaml is not in static-pods.txt", name=name)
    for name in STATIC:
        pod = nodes.api(f"/api/v1/namespaces/kube-system/pods/{name}-{nodes.first_name}")
        assert pod is not None, why("no mirror pod {pod} in kube-system", pod=f"{name}-{nodes.first_name}")
        assert "kubernetes.io/config.mirror" in pod["metadata"].get("annotations", {}), why("{name} is not a static pod's mirror", name=name)
        assert pod["status"].get("phase") == "Running", why("{name} is {phase}", name=name, phase=pod["status"].get("phase"))


@check("etcd_keys_read", hint="Ask etcd for its keys with etcdctl inside the etcd pod and save them to ~/lab03/etcd-keys.txt (step 1).")
def etcd_keys_read(nodes):
    keys = nodes.text(f"{DIR}/etcd-keys.txt")
    assert keys is not None, "~/lab03/etcd-keys.txt does not exist yet"
    lines = keys.split()
    assert "/registry/namespaces/kube-system" in lines, "etcd-keys.txt should list /registry/namespaces/kube-system: the cluster's objects are keys in etcd"


@check("web_deployed", hint="`cd ~/lab03 && kubectl apply -f web.yaml` (step 2), then `kubectl -n lab03 get deploy,pods`.")
def web_deployed(nodes):
    d = _deployment(nodes)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("busybox:1.37.0"), "the web container should run the lab's busybox image"
    available = d.get("status", {}).get("availableReplicas", 0)
    assert available >= 2, why("only {available} replica(s) available: are the pods pulling their image?", available=available)


@check("web_scaled", hint="`kubectl -n lab03 scale deploy/web --replicas=4` (step 3) and watch `kubectl -n lab03 get pods -o wide`.")
def web_scaled(nodes):
    _settled(_deployment(nodes), 4)


@check("pod_replaced", hint="Delete one web pod and save its name: `kubectl -n lab03 delete pod NAME && echo NAME > ~/lab03/deleted-pod.txt` (step 4).")
def pod_replaced(nodes):
    record = nodes.text(f"{DIR}/deleted-pod.txt")
    assert record is not None, "~/lab03/deleted-pod.txt does not exist yet"
    deleted = record.strip()
    assert deleted.startswith("web-"), why("deleted-pod.txt should name a web pod, not {deleted!r}", deleted=deleted)
    # A pod of the Deployment is named after one of its ReplicaSets plus five characters.
    sets = [rs["metadata"]["name"] for rs in (nodes.api(REPLICASETS) or {"items": []})["items"]]
    prefix, _, suffix = deleted.rpartition("-")
    pattern = ", ".join(f"{rs}-xxxxx" for rs in sets) or "after the ReplicaSet"
    assert prefix in sets and len(suffix) == 5 and suffix.isalnum(), why(
        "{deleted} is not the name of a web pod (they are named {pattern}): copy it from `kubectl -n lab03 get pods`", deleted=deleted, pattern=pattern
    )
    names = [p["metadata"]["name"] for p in _web_pods(nodes)]
    assert deleted not in names, why("{deleted} still exists", deleted=deleted)
    _settled(_deployment(nodes), 4)


def _cordoned_at(node):
    """When `spec.unschedulable` was last set: the API server's field tracking records the
    time of the update that wrote it (managedFields)."""
    times = [m.get("time", "") for m in node["metadata"].get("managedFields") or [] if "f:unschedulable" in (m.get("fieldsV1") or {}).get("f:spec", {})]
    return max(times, default="")


@check(
    "node_failure_survived",
    hint="`kubectl drain NODE --ignore-daemonsets --delete-emptydir-data` on the worker running web pods (step 5), then check all four run elsewhere.",
)
def node_failure_survived(nodes):
    cordoned = {n["metadata"]["name"]: _cordoned_at(n) for n in nodes.api("/api/v1/nodes")["items"] if n["spec"].get("unschedulable")}
    assert cordoned, "no node is drained (cordoned): `kubectl drain` a worker"
    pods = _web_pods(nodes)
    on_drained = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") in cordoned]
    assert not on_drained, why("web pods still on the drained node: {pods}", pods=", ".join(on_drained))
    # A cordon only keeps new pods away; a drain also evicts the running ones, and the
    # Deployment recreates them elsewhere, after the node was cordoned.
    since = min(t for t in cordoned.values() if t) if any(cordoned.values()) else ""
    moved = [p for p in pods if since and p["metadata"].get("creationTimestamp", "") > since]
    assert moved, why("no web pod was recreated after {nodes} was cordoned: a cordon stops new pods, `kubectl drain` also evicts the running ones", nodes=", ".join(cordoned))
    _settled(_deployment(nodes), 4)


@check(
    "service_answers_by_name",
    hint="`cd ~/lab03 && kubectl apply -f service.yaml`, then from the client pod: `wget -qO- http://web.lab03.svc.cluster.local > ~/lab03/from-client.txt` (step 6).",
)
def service_answers_by_name(nodes):
    assert nodes.api("/api/v1/namespaces/lab03/services/web") is not None, "there is no Service web in lab03"
    slices = nodes.api("/apis/discovery.k8s.io/v1/namespaces/lab03/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb")["items"]
    ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
    assert ready, "the Service has no ready endpoints: does its selector match the pods' labels?"
    answer = nodes.text(f"{DIR}/from-client.txt")
    assert answer is not None, "~/lab03/from-client.txt does not exist yet"
    assert answer.startswith("web v"), "from-client.txt should hold the page a web pod served through the Service"


@check("rolled_out_v2", hint="`kubectl -n lab03 set env deploy/web VERSION=v2` and `kubectl -n lab03 rollout status deploy/web` (step 7).")
def rolled_out_v2(nodes):
    d = _deployment(nodes)
    env = {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env.get("VERSION") == "v2", why("the pod template has VERSION={version}, not v2", version=env.get("VERSION"))
    assert int(d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "1")) >= 2, "the Deployment has not rolled out a second revision"
    assert d.get("status", {}).get("updatedReplicas", 0) == d["spec"]["replicas"], "not every replica runs the new version yet"
    _settled(d, d["spec"]["replicas"])
