"""What the kubeadm roles did, read from the kubeadm test double's record.

After converge, idempotence (a second converge) and the side effects (worker2 added; an
init interrupted after admin.conf; a cluster from before the completion marker): kubeadm
init ran once, then reset and once more for the interrupted init and never for the adopted
cluster, each worker joined once, a fresh token was created only for the runs that joined a
worker, and the join configuration (it holds the token) is gone.
"""

import os
from pathlib import Path

import yaml

LOG = "/var/log/kubeadm-double.log"


def kit_images():
    """The `kit.images` the converge read (written by `./kit test.molecule`)."""
    return yaml.safe_load(Path(os.environ["LABKIT_MOLECULE_VARS"]).read_text())["kit"]["images"]


def calls(host, verb):
    return [line for line in host.file(LOG).content_string.splitlines() if line.startswith(verb)]


def test_init_ran_once_then_again_only_after_the_interrupted_one_was_reset(host):
    if host.backend.get_hostname() != "cp1":
        assert calls(host, "init") == [] and calls(host, "reset") == []
        return
    init = "init --config /etc/kubernetes/labkit/kubeadm-init.yaml --skip-token-print"
    verbs = [line for line in host.file(LOG).content_string.splitlines() if line.startswith(("init", "reset"))]
    assert verbs == [init, "reset --force --cri-socket unix:///run/containerd/containerd.sock", init]
    marker = host.file("/var/lib/labkit/kubeadm-init.done")
    assert marker.content_string == "kubeadm init finished before this marker existed (the API server was ready): Kubernetes 1.36.4\n"
    config = host.file("/etc/kubernetes/labkit/kubeadm-init.yaml")
    assert config.mode == 0o600
    init = next(d for d in yaml.safe_load_all(config.content_string) if d["kind"] == "InitConfiguration")
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.59.11"
    cluster = next(d for d in yaml.safe_load_all(config.content_string) if d["kind"] == "ClusterConfiguration")
    etcd = kit_images()["image-etcd"]  # the artifact manifest's reference: repository and tag
    assert f"{cluster['imageRepository']}/etcd:{cluster['etcd']['local']['imageTag']}" == etcd
    assert host.file("/root/.kube/config").mode == 0o600


def test_a_token_was_created_only_for_runs_that_joined_a_worker(host):
    if host.backend.get_hostname() != "cp1":
        assert calls(host, "token") == []
        return
    tokens = calls(host, "token create")
    assert len(tokens) == 2  # converge (worker1) and side effect (worker2); none in the idempotence run
    assert "--ttl 30m0s" in tokens[0] and "worker1" in tokens[0] and "worker2" in tokens[1] and "worker1" not in tokens[1]


def test_each_worker_joined_once_with_its_own_address(host):
    name = host.backend.get_hostname()
    if name == "cp1":
        assert calls(host, "join") == []
        return
    assert calls(host, "join") == ["join --config /etc/kubernetes/labkit/kubeadm-join.yaml"]
    joined = yaml.safe_load(host.file("/var/log/kubeadm-double-join.yaml").content_string)
    assert joined["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "192.168.59.11:6443"
    assert joined["discovery"]["bootstrapToken"]["token"].startswith("abcdef.")
    assert {"name": "node-ip", "value": {"worker1": "192.168.59.12", "worker2": "192.168.59.13"}[name]} in joined["nodeRegistration"]["kubeletExtraArgs"]
    assert not host.file("/etc/kubernetes/labkit/kubeadm-join.yaml").exists
