"""Every error chaos-drill raises on purpose; each message names the problem and the fix.

    ChaosDrillError            exit code 2 unless said otherwise
    ├── UsageError             bad flags or arguments
    ├── SpecError              a drill file that does not validate
    ├── ClusterError           no cluster, or a cluster that does not work
    │   └── ComponentDied      a local cluster process exited; carries its last log lines
    ├── SetupError             a missing package, port, privilege or build
    ├── SafetyError            a target that did not opt in, or a workload that is not steady
    ├── FaultError             a fault that could not be injected
    ├── RegistryError          a registry that cannot be reached, trusted or written to
    ├── RestoreError           a restore record that cannot be read, or undone from here
    └── JournalError           the run's journal could not be written (a full disk)
"""


class ChaosDrillError(Exception):
    """Base class: a one-line message for the user and the exit code to leave with."""

    exit_code = 2


class UsageError(ChaosDrillError):
    """Bad flags or arguments."""


class SpecError(ChaosDrillError):
    """A drill document that is malformed or does not validate."""


class ClusterError(ChaosDrillError):
    """No reachable cluster, or one that does not work."""


class ComponentDied(ClusterError):
    """A process of the local cluster exited; the message ends with its last log lines."""


class SetupError(ChaosDrillError):
    """A missing package, privilege, free port or Kubernetes build."""


class SafetyError(ChaosDrillError):
    """A target that did not opt in, or a workload that is not at steady state."""


class FaultError(ChaosDrillError):
    """A fault that could not be injected."""


class RegistryError(ChaosDrillError):
    """A registry that cannot be reached, whose TLS certificate is not trusted, or that denies
    the push."""


class RestoreError(ChaosDrillError):
    """A restore record that cannot be read, or a change that cannot be undone from here (a
    stopped node without its provider); restore skips it with one line and goes on."""


class JournalError(ChaosDrillError):
    """A write to the run's journal failed (a full disk, an I/O error): the drill stops
    injecting, restores, and ends with this."""
