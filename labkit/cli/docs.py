"""The guide site's tasks: build it, serve it on this machine."""

from __future__ import annotations

from invoke import Context, task

from labkit.cli.common import friendly, kit, say


@task(name="build", default=True)
@friendly
def docs_build(c: Context) -> None:
    """Build the guide site (English and Chinese) from the labs and the README, in strict mode."""
    from labkit.docs import site

    built = site.build(kit().state_dir)
    say(f"✓ the guide site is in {built.out} (open index.html, or `./kit docs.serve`)")


@task(name="serve", help={"port": "Port (default 8000).", "host": "Address (default 127.0.0.1: this machine only)."})
@friendly
def docs_serve(c: Context, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Build the guide site and serve it until Ctrl-C."""
    from labkit.cache import serve
    from labkit.docs import site

    built = site.build(kit().state_dir)
    serve.run_until_stopped(site.serving(built, host, port), lambda url: say(f"✓ the guide site at {url}/ (English; 中文: {url}/zh/index.html), until Ctrl-C"))
