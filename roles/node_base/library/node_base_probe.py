#!/usr/bin/python
"""node_base_probe: the node's base-OS state in one call (a role-local module).

One task instead of a stat, a find or a slurp per file: on a slow node every task costs
a round trip, so node_base reads everything its tasks decide on at once, then each task
runs only when the probe shows its work is needed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: node_base_probe
short_description: Read the state node_base's tasks decide on, in one call
description:
  - Reads the static and running hostname, /etc/fstab's presence, whether swap.target is
    masked, which kernel modules are present (loaded or built in), whether dpkg has an
    unfinished run, the index apt was last refreshed from, and which packages are not
    fully installed, and whether the sysctls are set live and persisted. Changes nothing.
options:
  modules:
    description: Kernel modules to look for (br_netfilter by its sysctl folder).
    type: list
    elements: str
    default: []
  packages:
    description: Debian packages that should be installed.
    type: list
    elements: str
    default: []
  apt_marker:
    description: File holding the sha256 of the package index apt was refreshed from.
    type: path
    required: true
  sysctls:
    description: Sysctls that should be set, live and in I(sysctl_file).
    type: dict
    default: {}
  sysctl_file:
    description: The file that persists I(sysctls), one C(key=value) line each.
    type: path
  dpkg_lock_timeout:
    description:
      - Seconds to wait for an apt or dpkg run that still holds dpkg's locks (one an
        interrupted provisioning left going) before dpkg's state is read.
    type: int
    default: 600
author: labkit
"""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def module_present(name: str, root: str = "/") -> bool:
    """A module is present when it is loaded or built in; br_netfilter shows by its sysctls."""
    path = "proc/sys/net/bridge" if name == "br_netfilter" else f"sys/module/{name}"
    return os.path.exists(os.path.join(root, path))


def not_installed(dpkg_query_output: str, packages: list[str]) -> list[str]:
    """Packages whose dpkg status is not `install ok installed`, from the output of
    `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' PKG...` (`ii ` when installed)."""
    installed = set()
    for line in dpkg_query_output.splitlines():
        name, _, status = line.partition(" ")
        if status.startswith("ii"):
            installed.add(name.split(":")[0])
    return [p for p in packages if p not in installed]


def sysctls_set(root: str, sysctls: dict, sysctl_file: str | None) -> bool:
    """Every sysctl has its value live (/proc/sys) and a `key=value` line in the file
    (the form ansible.posix.sysctl writes)."""
    if not sysctls:
        return True
    lines = set((_read(os.path.join(root, sysctl_file.lstrip("/"))) or "").splitlines()) if sysctl_file else set()
    for key, value in sysctls.items():
        live = _read(os.path.join(root, "proc/sys", key.replace(".", "/")))
        if live is None or " ".join(live.split()) != str(value) or f"{key}={value}" not in lines:
            return False
    return True


DPKG_LOCKS = ("var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock")


def _lock_free(path: str) -> bool:
    """Whether no process holds the POSIX lock apt and dpkg take on ``path``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return True  # no such lock file: nothing holds it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def wait_for_dpkg(root: str, timeout: float, poll: float = 1.0) -> float | None:
    """Wait until apt and dpkg hold none of dpkg's locks (an apt-get an interrupted run
    left going finishes its work, or dies); the seconds waited, or None on timeout.
    Reading dpkg's state, or running `dpkg --configure -a`, while it runs would race it."""
    start = time.monotonic()
    while not all(_lock_free(os.path.join(root, lock)) for lock in DPKG_LOCKS):
        if time.monotonic() - start >= timeout:
            return None
        time.sleep(poll)
    return time.monotonic() - start


def unit_states(run, units: list[str]) -> dict:
    """Each unit's {enabled, active} from one `systemctl show` (a block per unit, in the
    order asked); a unit systemd cannot answer for reads as neither."""
    states = {u: {"enabled": False, "active": False} for u in units}
    if not units or run is None:
        return states
    rc, out = run(["systemctl", "show", "--property=UnitFileState,ActiveState", "--", *units])
    if rc != 0:
        return states
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in out.strip("\n").split("\n\n")]
    for unit, props in zip(units, blocks, strict=False):  # a block missing: that unit stays "to do"
        states[unit] = {"enabled": props.get("UnitFileState") == "enabled", "active": props.get("ActiveState") == "active"}
    return states


def probe(
    root: str, modules: list[str], packages: list[str], apt_marker: str, run=None, sysctls: dict | None = None, sysctl_file: str | None = None, units: list[str] | None = None
) -> dict:
    """Everything node_base's tasks decide on, read under ``root``; ``run(argv)`` returns
    (rc, stdout) and is used for dpkg-query and systemctl."""
    static = (_read(os.path.join(root, "etc/hostname")) or "").strip()
    running = (_read(os.path.join(root, "proc/sys/kernel/hostname")) or "").strip()
    swap_target = os.path.join(root, "etc/systemd/system/swap.target")
    updates = os.path.join(root, "var/lib/dpkg/updates")
    try:
        pending = sum(1 for e in os.scandir(updates) if e.is_file())
    except OSError:
        pending = 0
    missing_packages = list(packages)
    if packages and run is not None:
        rc, out = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages])
        # rc 1: some package is unknown to dpkg; its line is absent, the rest still count.
        missing_packages = not_installed(out, packages) if rc in (0, 1) else list(packages)
    marker = os.path.join(root, apt_marker.lstrip("/"))
    return {
        "hostname_static": static,
        "hostname_running": running,
        "fstab_exists": os.path.isfile(os.path.join(root, "etc/fstab")),
        "swap_target_masked": os.path.islink(swap_target) and os.readlink(swap_target) == "/dev/null",
        "modules_missing": [m for m in modules if not module_present(m, root)],
        "dpkg_pending": pending,
        "apt_marker": (_read(marker) or "").strip(),
        "packages_missing": missing_packages,
        "sysctls_set": sysctls_set(root, sysctls or {}, sysctl_file),
        "units": unit_states(run, list(units or [])),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "modules": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "apt_marker": {"type": "path", "required": True},
            "sysctls": {"type": "dict", "default": {}},
            "sysctl_file": {"type": "path"},
            "units": {"type": "list", "elements": "str", "default": []},
            "dpkg_lock_timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )

    def run(argv: list[str]) -> tuple[int, str]:
        rc, out, _err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        return rc, out

    p = module.params
    waited = wait_for_dpkg("/", p["dpkg_lock_timeout"])
    if waited is None:
        module.fail_json(msg=f"apt or dpkg still holds dpkg's lock after {p['dpkg_lock_timeout']} s (see `ps -C apt-get,dpkg`); let it finish, then run the kit again")
    module.exit_json(dpkg_waited=round(waited, 1), changed=False, **probe("/", p["modules"], p["packages"], p["apt_marker"], run, p["sysctls"], p["sysctl_file"], p["units"]))


if __name__ == "__main__":
    main()
