"""The artifact cache's tasks: fill, check, hand-feed, pin, serve."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit, task
from rich.table import Table

from labkit import paths
from labkit.cache import pin as cache_pin
from labkit.cache import store, supply
from labkit.cli.common import console, friendly, kit, say
from labkit.errors import KitError
from labkit.paths import ROOT

# ---------------------------------------------------------------------- cache


@task(
    help={
        "all_arches": "Fetch for amd64 and arm64 (an instructor preparing mixed laptops).",
        "jobs": "Parallel downloads (default 4).",
        "locked": "Refuse any artifact labkit/artifacts.yml does not pin (like `npm ci`).",
    }
)
@friendly
def fetch(c: Context, all_arches: bool = False, jobs: int = 4, locked: bool = False) -> None:
    """Fill the artifact cache (before a workshop): only what is missing, resumable, verified, in parallel; pins on first fetch."""
    k = kit()
    report = supply.fetch(k, ["amd64", "arm64"] if all_arches else None, locked=locked, jobs=jobs)
    say(f"✓ the cache in {k.resolve().cache_dir} holds all {len(report.outcomes)} artifact(s)")


@task(name="status")
@friendly
def cache_status(c: Context) -> None:
    """List every artifact the config needs: present/missing/corrupt, and its trust (non-zero exit unless all present)."""

    k = kit()
    cache_dir = k.resolve().cache_dir
    table = Table("artifact", "version", "arch", "state", "trust", "path")
    rows = store.status(cache_dir, supply.cache_items(k))
    marks = {"present": "[green]present[/]", "missing": "[yellow]missing[/]", "corrupt": "[red]corrupt[/]"}
    for item, state in rows:
        version = item.version + (f" (pinned {item.pinned_version})" if item.pinned_version else "")
        table.add_row(item.name + (" (stand-in)" if item.standin else ""), version, item.arch, marks[state], item.trust, str(item.relpath()))
    console.print(table)
    bad = [item for item, state in rows if state != "present"]
    if bad:
        raise Exit(f"✗ {len(bad)} artifact(s) missing or corrupt: run `./kit cache.fetch` (or `./kit cache.add FILE`)", code=1)


@task(help={"file": "A file downloaded another way (USB stick, another machine)."})
@friendly
def add(c: Context, file: str) -> None:
    """Put FILE into the cache after checking it has the checksum of an artifact the config needs."""

    k = kit()
    item = store.add(k.resolve().cache_dir, supply.cache_items(k, ["amd64", "arm64"]), Path(file))
    say(f"✓ added {item.name} {item.version} ({item.arch})")


@task(help={"fetch": "First fetch what is missing for amd64 and arm64, so every slot the config uses gets a pin (connected machine)."})
@friendly
def pin(c: Context, fetch: bool = False) -> None:
    """(Maintainers) write the cache's lock (pins taken on first fetch) into labkit/artifacts.yml, for review in a commit."""
    from labkit.cache.lock import Lock

    k = kit()
    if fetch:
        supply.fetch(k, ["amd64", "arm64"])
    written, errors = cache_pin.pin_from_lock(paths.MANIFEST, Lock(k.resolve().cache_dir), say=say)
    errors += supply.loose_images(k)
    if errors:
        raise KitError("some checksums could not be pinned:\n" + "\n".join(f"  - {e}" for e in errors))
    say(f"✓ {written} pin(s) written into {paths.MANIFEST.relative_to(ROOT)}: review them with `git diff` and commit")


@task(name="serve")
@friendly
def cache_serve(c: Context) -> None:
    """Serve the artifact cache to the nodes until Ctrl-C (for lab steps that pull from it by hand)."""
    import threading

    from labkit.cache import serve

    resolved = kit().resolve()
    with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]) as url:
        say(f"serving {resolved.cache_dir} at {url} — Ctrl-C to stop")
        threading.Event().wait()


@task(name="lock-debs", help={"suite": "Debian suite of the nodes (default: the box's suite)."})
@friendly
def lock_debs(c: Context, suite: str | None = None) -> None:
    """(Maintainers) pin the Debian packages the roles install, with dependencies and checksums, in labkit/artifacts-debs.yml."""
    from labkit.cache import debs

    resolved = kit().resolve()
    debs.lock(suite or resolved.config.box.suite, ["amd64", "arm64"], mirror=resolved.config.box.mirror, say=say)


@task(name="samples")
@friendly
def cache_samples(c: Context) -> None:
    """Build the labs' sample images (labs/samples: web v1/v2, hello, cpu) into the cache from its busybox-static package."""
    from labkit.cluster import host
    from labkit.labs import samples

    samples.build(kit().resolve().cache_dir, host.arch(), say=say)
