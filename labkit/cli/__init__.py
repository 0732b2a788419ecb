"""The invoke tasks, one module per audience (cluster, cache, labs, dev); each task only
parses flags, calls one function and prints. ``tasks.py`` exposes ``namespace``."""

from invoke import Collection

from labkit.cli import cache, classroom, cluster, dev, docs, labs

namespace = Collection(
    cluster.up, cluster.provision, cluster.status, cluster.ssh, cluster.halt, cluster.destroy, cluster.config, cluster.doctor, cluster.kubeconfig, dev.bench, cluster.budget
)
namespace.add_collection(Collection("box", cluster.build, dev.box_bench))
namespace.add_collection(
    Collection("cache", cache.fetch, cache.cache_status, cache.add, cache.pin, cache.lock_debs, dev.standins, cache.cache_serve, cache.cache_samples, dev.cache_bench)
)
namespace.add_collection(
    Collection(
        "lab", labs.lab_list, labs.lab_start, labs.lab_check, labs.lab_solve, labs.lab_walk, labs.lab_reset, labs.lab_status, labs.lab_snapshot, labs.lab_restore, labs.lab_ladder
    )
)
namespace.add_collection(Collection("classroom", classroom.classroom_serve, classroom.classroom_join, classroom.classroom_leave, classroom.classroom_bench))
namespace.add_collection(Collection("docs", docs.docs_build, docs.docs_serve))
_tests = Collection("test")
_tests.add_task(dev.everything, name="all", default=True)
_tests.add_task(dev.lint)
_tests.add_task(dev.unit)
_tests.add_task(dev.vm_suite, name="vm")
_tests.add_task(dev.molecule)
_tests.add_task(dev.e2e)
namespace.add_collection(_tests)
