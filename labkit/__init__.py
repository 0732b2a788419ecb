"""labkit: the Python brain of the cloud-native sandbox lab kit.

One module per concern (see README.md, "How the kit is built"): ``config`` loads and
validates ``sandbox.yml``; ``vagrant`` wraps the Vagrant CLI; ``inventory`` renders the
Ansible inventory; ``runner`` runs playbooks; ``doctor`` checks the host; ``box`` builds
the local Debian box.  ``tasks.py`` at the repository root only wires them to invoke.
"""

__version__ = "0.1.0"
