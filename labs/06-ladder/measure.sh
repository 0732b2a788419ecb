#!/bin/sh
# Lab 06: measure each rung of the ladder on this node and print key=value lines
# (`sh measure.sh > ~/lab06/ladder.txt`). Needs the Kubernetes, Istio and Knative layers,
# metrics-server, lab 05's function (hello in lab05) without lab 05's PingSource (it keeps
# waking hello), and the image below in containerd (`./kit lab.start 06` puts it there).
set -eu
IMAGE=labkit.local/samples/web:v1
say() { echo "measure.sh: $*" >&2; }
if ! kubectl -n lab05 get ksvc hello > /dev/null 2>&1; then
  say "lab 05's function hello is not deployed: do lab 05's steps 1-4 first"
  exit 1
fi
if ! sudo ctr images ls -q | grep -qx "$IMAGE"; then
  say "$IMAGE is not in containerd: \`./kit lab.start 06\` on the host puts it there"
  exit 1
fi
NODE_IP=$(sed -n 's/.*--node-ip=\([0-9.]*\).*/\1/p' /etc/default/kubelet)
now() { date +%s.%N; }
call() { python3 -c "import urllib.request as u; u.urlopen(u.Request('http://$NODE_IP:31080/', headers={'Host': '$1'}), timeout=120).read()"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

# The VM: its boot (systemd-analyze) and what its OS uses (MemTotal - MemAvailable).
echo "vm_boot=$(systemd-analyze | head -1)"
echo "vm_mem=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t - a "Ki"}' /proc/meminfo)"

# A container with containerd alone (the image is there already): start to exit, timed.
t=$(now); sudo ctr run --rm "$IMAGE" ladder-start /bin/true; echo "container_start_s=$(since "$t")"
sudo ctr run -d "$IMAGE" ladder-mem /bin/sleep 60 > /dev/null; sleep 3
echo "container_mem=$(sudo cat /sys/fs/cgroup/default/ladder-mem/memory.current 2>/dev/null || echo 0)"
sudo ctr task kill -s KILL ladder-mem > /dev/null 2>&1 || true; sleep 1; sudo ctr containers rm ladder-mem > /dev/null 2>&1 || true

# A pod: create to Ready, through the scheduler and the kubelet.
kubectl create namespace lab06 > /dev/null 2>&1 || true
kubectl -n lab06 delete pod ladder --ignore-not-found --wait=true > /dev/null
t=$(now); kubectl -n lab06 run ladder --image="$IMAGE" --restart=Never > /dev/null
kubectl -n lab06 wait --for=condition=Ready pod/ladder --timeout=300s > /dev/null; echo "pod_start_s=$(since "$t")"
sleep 70  # metrics-server reports every 15 s after a first full window
echo "pod_mem=$(kubectl -n lab06 top pod ladder --containers --no-headers | awk '{print $4}' | tr '\n' ' ')"

# A function: lab 05's hello from zero (its cold start), then its memory while warm.
HOST=hello.lab05.knative.internal
waited=0
until [ -z "$(kubectl -n lab05 get pods -l serving.knative.dev/service=hello --no-headers 2>/dev/null)" ]; do
  if [ "$waited" -ge 600 ]; then
    say "hello has not scaled to zero in 10 minutes: is something calling it? (lab 05's PingSource: kubectl -n lab05 delete pingsource ping)"
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done
t=$(now); call "$HOST"; echo "function_start_s=$(since "$t")"
for _ in $(seq 12); do call "$HOST"; sleep 5; done
echo "function_mem=$(kubectl -n lab05 top pod -l serving.knative.dev/service=hello --containers --no-headers | awk '{print $4}' | tr '\n' ' ')"
