#!/bin/sh
# TEST DOUBLE of kubeadm for the Molecule logic test of the kubeadm roles. It records
# each call in /var/log/kubeadm-double.log, keeps the configuration it was given, and
# creates the files the real kubeadm creates (the roles' state probes look at them).
set -eu
log=/var/log/kubeadm-double.log
echo "$*" >> "$log"
config=""
prev=""
for arg in "$@"; do
    [ "$prev" = "--config" ] && config="$arg"
    prev="$arg"
done
case "${1:-}" in
    init)
        [ -r "$config" ] || { echo "kubeadm double: init without a readable --config" >&2; exit 1; }
        cp "$config" /var/log/kubeadm-double-init.yaml
        mkdir -p /etc/kubernetes/pki
        printf 'apiVersion: v1\nkind: Config\nclusters: []\n' > /etc/kubernetes/admin.conf
        ;;
    reset)
        rm -rf /etc/kubernetes/admin.conf /etc/kubernetes/pki /etc/kubernetes/kubelet.conf
        ;;
    token)
        [ "${2:-}" = create ] || exit 1
        [ -f /etc/kubernetes/admin.conf ] || { echo "kubeadm double: token create before init" >&2; exit 1; }
        n=$(grep -c '^token create' "$log")
        printf 'kubeadm join 192.168.59.11:6443 --token abcdef.%016d --discovery-token-ca-cert-hash sha256:%064d\n' "$n" 0
        ;;
    join)
        [ -r "$config" ] || { echo "kubeadm double: join without a readable --config" >&2; exit 1; }
        cp "$config" /var/log/kubeadm-double-join.yaml
        mkdir -p /etc/kubernetes
        printf 'apiVersion: v1\nkind: Config\n' > /etc/kubernetes/kubelet.conf
        ;;
    *)
        echo "kubeadm double: unexpected call: $*" >&2
        exit 1
        ;;
esac
