#!/bin/sh
# Lab 06: measure each rung of the ladder on this node and print key=value lines, one line
# per sample (`sh measure.sh > ~/lab06/ladder.txt`; `./kit lab.ladder` reports the medians).
# Every rung is measured SAMPLES times (3 unless set: `SAMPLES=5 sh measure.sh`); the VM
# booted once, so its boot is one line. The mesh's cost is the same pod as the `pod` rung,
# started in a namespace whose pods get Istio's sidecar (`mesh`).
# Needs the Kubernetes, Istio and Knative layers, metrics-server, lab 05's function (hello
# in lab05) without lab 05's PingSource (it keeps waking hello), and the image below in
# containerd (`./kit lab.start 06` puts it there).
set -eu
IMAGE=labkit.local/samples/web:v1
HOST=hello.lab05.knative.internal
SAMPLES=${SAMPLES:-3}
say() { echo "measure.sh: $*" >&2; }
case $SAMPLES in
  '' | *[!0-9]* | 0) say "SAMPLES is '$SAMPLES': it must be a whole number, at least 1"; exit 1 ;;
esac
if ! kubectl -n lab05 get ksvc hello > /dev/null 2>&1; then
  say "lab 05's function hello is not deployed: do lab 05's steps first (at least step 1)"
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
echo "# measure.sh: $SAMPLES samples per rung, $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# The memory of one pod, every container (the ladder sums them): `top_mem NAMESPACE POD`,
# or `top_mem NAMESPACE -l SELECTOR` (the first pod listed), once metrics-server has it.
top_mem() {
  ns=$1
  shift
  tries=0
  until out=$(kubectl -n "$ns" top pod "$@" --containers --no-headers 2> /dev/null) && [ -n "$out" ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge 36 ]; then
      say "metrics-server has no figures for $* in $ns after 3 minutes: is it running? (kubectl top nodes)"
      exit 1
    fi
    sleep 5
  done
  echo "$out" | awk 'NR == 1 { pod = $1 } $1 == pod { print $4 }' | tr '\n' ' '
}

# A function: lab 05's hello from zero, its cold start. Each sample waits until hello is at
# zero again (a minute without requests, the 30 s grace period, then the pod's shutdown),
# so the first is taken now and the others after the other rungs, which are measured while
# hello scales back down.
wait_for_zero() {
  waited=0
  until [ -z "$(kubectl -n lab05 get pods -l serving.knative.dev/service=hello --no-headers 2> /dev/null)" ]; do
    if [ "$waited" -ge 600 ]; then
      say "hello has not scaled to zero in 10 minutes: is something calling it? (lab 05's PingSource: kubectl -n lab05 delete pingsource ping)"
      exit 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}
cold_start() {
  wait_for_zero
  t=$(now)
  call "$HOST"
  echo "function_start_s=$(since "$t")"
}
cold_start
# Its memory while warm: a minute of calls (metrics-server's first window), then a sample
# every 15 s, still called.
for _ in $(seq 12); do call "$HOST"; sleep 5; done
for _ in $(seq "$SAMPLES"); do
  mem=$(top_mem lab05 -l serving.knative.dev/service=hello)
  echo "function_mem=$mem"
  for _ in 1 2 3; do call "$HOST"; sleep 5; done
done

# The VM: its boot (systemd-analyze) and what its OS uses (MemTotal - MemAvailable).
echo "vm_boot=$(systemd-analyze | head -1)"
for _ in $(seq "$SAMPLES"); do
  echo "vm_mem=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t - a "Ki"}' /proc/meminfo)"
  sleep 1
done

# A container with containerd alone (the image is there already): start to exit, timed;
# then the memory of its cgroup while it sleeps.
gone() { sudo ctr task kill -s KILL "$1" > /dev/null 2>&1 || true; sleep 1; sudo ctr containers rm "$1" > /dev/null 2>&1 || true; }
for i in $(seq "$SAMPLES"); do
  gone "ladder-start-$i"
  t=$(now)
  sudo ctr run --rm "$IMAGE" "ladder-start-$i" /bin/true
  echo "container_start_s=$(since "$t")"
done
gone ladder-mem
sudo ctr run -d "$IMAGE" ladder-mem /bin/sleep "$((SAMPLES + 60))" > /dev/null
sleep 3
for _ in $(seq "$SAMPLES"); do
  echo "container_mem=$(sudo cat /sys/fs/cgroup/default/ladder-mem/memory.current 2> /dev/null || echo 0)"
  sleep 1
done
gone ladder-mem

# A pod: create to Ready, through the scheduler and the kubelet. The same pod in lab06-mesh,
# whose label istio-injection=enabled has istiod's webhook add the sidecar: the mesh's cost.
# The samples alternate, so both meet the same load on the node.
kubectl create namespace lab06 > /dev/null 2>&1 || true
kubectl create namespace lab06-mesh > /dev/null 2>&1 || true
kubectl label namespace lab06-mesh istio-injection=enabled --overwrite > /dev/null
pod_start() { # NAMESPACE KEY
  kubectl -n "$1" delete pod ladder --ignore-not-found --wait=true --grace-period=1 > /dev/null
  t=$(now)
  kubectl -n "$1" run ladder --image="$IMAGE" --restart=Never > /dev/null
  kubectl -n "$1" wait --for=condition=Ready pod/ladder --timeout=300s > /dev/null
  echo "$2_start_s=$(since "$t")"
}
for _ in $(seq "$SAMPLES"); do
  pod_start lab06 pod
  pod_start lab06-mesh mesh
done
case " $(kubectl -n lab06-mesh get pod ladder -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}') " in
  *" istio-proxy "*) ;;
  *)
    say "the pod in lab06-mesh has no istio-proxy sidecar: is istiod running? (kubectl -n istio-system get pods)"
    exit 1
    ;;
esac
sleep 70 # metrics-server reports every 15 s after a first full window
for i in $(seq "$SAMPLES"); do
  mem=$(top_mem lab06 ladder)
  echo "pod_mem=$mem"
  mem=$(top_mem lab06-mesh ladder)
  echo "mesh_mem=$mem"
  if [ "$i" -lt "$SAMPLES" ]; then sleep 15; fi
done

# The other cold starts of the function, each from zero.
for _ in $(seq 2 "$SAMPLES"); do cold_start; done
