"""The classroom's tasks: the instructor serves the class; a student joins or leaves it."""

from __future__ import annotations

import contextlib
import socket

from invoke import Context, task

from labkit.cli.common import friendly, kit, say
from labkit.errors import KitError

DEFAULT_PORT = 8800
JOIN_FIELDS = {
    "url": "give the class server's address as `./kit classroom.serve` prints it, e.g. http://192.168.1.20:8800",
    "token": "a class token is 16 to 128 letters, digits, - or _, as `./kit classroom.serve` prints it",
    "student": "give your name, 1 to 64 characters, as the instructor will see it",
}


def _addresses() -> list[str]:
    """This machine's IPv4 addresses other students can reach (not loopback)."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if not address.startswith("127.") and address not in found:
                found.append(address)
    return found


@task(
    name="serve",
    help={
        "host": "Address to listen on (default 0.0.0.0: the room's network).",
        "port": f"Port (default {DEFAULT_PORT}).",
        "token": "The class token (default: the one made on the first serve, kept in the state folder).",
    },
)
@friendly
def classroom_serve(c: Context, host: str = "0.0.0.0", port: int = DEFAULT_PORT, token: str | None = None) -> None:  # noqa: S104 - the room's network is the point
    """Serve this machine's artifact cache and the live progress page to the class, until Ctrl-C."""
    from labkit.cache import serve
    from labkit.classroom import server
    from labkit.classroom.store import Roster
    from labkit.files import atomic_write

    k = kit()
    resolved = k.resolve()
    token_file = k.state_dir / "classroom" / "token"
    if token is None:
        token = token_file.read_text().strip() if token_file.exists() else server.new_token()
    atomic_write(token_file, token + "\n", 0o600)
    roster = Roster(k.state_dir / "classroom" / "progress.sqlite3")
    guide = k.state_dir / "site"
    if not (guide / "index.html").exists():
        from labkit.docs import site

        try:
            guide = site.build(k.state_dir).out
        except KitError as exc:
            say(f"  (the guide site is not served: {str(exc).splitlines()[0]})")

    def announce(url: str) -> None:
        say(f"✓ serving the class: the cache in {resolved.cache_dir}, and the progress page")
        where = _addresses() if host in ("0.0.0.0", "") else [host]  # noqa: S104
        for address in where or ["<this machine's address>"]:
            say(f"  progress page: http://{address}:{port}/?token={token}")
            if (guide / "index.html").exists():
                say(f"  the guides:    http://{address}:{port}/guide/index.html?token={token}")
        say(f"  students run:  ./kit classroom.join http://{(where or ['ADDRESS'])[0]}:{port} --token {token} --student 'THEIR NAME'")
        say(f"  (listening on {url}; Ctrl-C stops it, progress is kept in {k.state_dir / 'classroom'})")

    try:
        serve.run_until_stopped(server.serving(resolved.cache_dir, host, port, token, roster, guide=guide), announce)
    finally:
        roster.close()


@task(
    name="join",
    help={
        "url": "The class server's address, e.g. http://192.168.1.20:8800.",
        "token": "The class token the instructor gave.",
        "student": "Your name as the instructor will see it.",
        "no_progress": "Do not share your lab.check results (the cache is still filled from the class).",
    },
)
@friendly
def classroom_join(c: Context, url: str, token: str, student: str, no_progress: bool = False) -> None:
    """Join a class: fill the cache from the instructor's machine and (unless --no-progress) share lab.check results."""
    from pydantic import ValidationError

    from labkit.classroom import client
    from labkit.cluster.config import override_path
    from labkit.cluster.schema import Classroom

    try:
        classroom = Classroom(url=url.rstrip("/"), token=token, student=student, share_progress=not no_progress)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0])
        raise KitError(f"--{field} {first.get('input')!r}: {JOIN_FIELDS.get(field, first['msg'])}") from None
    seen = client.check_server(classroom.url, classroom.token)
    k = kit()
    override = override_path(k.config_path)
    client.write_block(override, classroom)
    kit().resolve()  # the config with the class in it must still be valid
    say(f"✓ joined the class at {classroom.url} ({seen} student(s) there so far); written to {override}")
    say("  `./kit up` and `./kit cache.fetch` now fill the cache from the class server, verified against the same pins")
    say("  your `./kit lab.check` results are shared with the instructor (only ✓/✗ per check)" if classroom.share_progress else "  your progress is not shared")


@task(name="leave")
@friendly
def classroom_leave(c: Context) -> None:
    """Leave the class: the cache is filled from upstream again, nothing more is shared."""
    from labkit.classroom import client
    from labkit.cluster.config import override_path

    override = override_path(kit().config_path)
    client.write_block(override, None)
    say(f"✓ left the class ({override} no longer names it)")


@task(name="bench", help={"students": "Simulated students (default 30).", "mib": "Sizes of the cache's files in MiB, comma-separated (default 24,12,6,2)."})
@friendly
def classroom_bench(c: Context, students: int = 30, mib: str = "24,12,6,2") -> None:
    """Benchmark a class filling its caches from the class server at once, beside nginx, on loopback."""
    from labkit.dev import classbench

    try:
        sizes = [int(x) for x in mib.split(",") if x.strip()]
    except ValueError:
        raise KitError(f"--mib takes sizes in MiB separated by commas, e.g. 24,12,6,2 (given {mib!r})") from None
    results = classbench.run(students=students, sizes=sizes, say=say)
    for line in classbench.report(results, students, sizes):
        say(line)
