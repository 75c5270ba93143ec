"""A one-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd in a temporary directory.

Everything the daemons write (key, sockets, state, spool, logs, pid files) lives under one directory, the ports
are free ones picked at start, and the clients find the cluster through ``SLURM_CONF`` (:attr:`SlurmCluster.env`),
so the cluster neither needs nor touches a system-wide SLURM or MUNGE setup. There is no accounting (no slurmdbd):
``sacct`` does not work, job states come from ``squeue``. There is no CPU binding (task/none): a job sees all the
machine's CPUs, whatever its ``--cpus-per-task``.
"""

import contextlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The programs the cluster needs: the three daemons and the clients that Snakemake's SLURM executor calls.
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scancel", "scontrol")
#: Where Debian puts the daemons (not always on a user's PATH).
SBIN = ("/usr/sbin", "/sbin")
PARTITION = "bayesrb"
#: snakemake-executor-plugin-slurm-jobstep (0.6) removes every SLURM_* variable, SLURM_CONF included, before its
#: ``srun`` inside a job; without the variable srun looks for /etc/slurm/slurm.conf, so a shim first on PATH sets it.
SRUN_SHIM = """\
#!/bin/sh
SLURM_CONF={conf} exec {srun} "$@"
"""

SLURM_CONF = """\
ClusterName=bayesrb-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={logs}/slurmctld.log
SlurmdLogFile={logs}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=5
MailProg=/bin/true
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def find_program(name: str) -> str | None:
    """Return the path of ``name`` on PATH or in the system sbin folders, or None."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def missing_programs() -> list[str]:
    """Return the names in :data:`PROGRAMS` that are not installed."""
    return [name for name in PROGRAMS if find_program(name) is None]


def free_ports(count: int) -> list[int]:
    """Return ``count`` different TCP ports that are free on this machine right now."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def node_definition() -> tuple[str, str]:
    """Return this machine's host name and its ``NodeName=...`` line as slurmd measures it (CPUs, RealMemory)."""
    line = subprocess.run([find_program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    node = line.splitlines()[0].strip()
    return node.split()[0].removeprefix("NodeName="), node


@dataclass
class SlurmCluster:
    """A running one-node cluster.

    Attributes
    ----------
    directory : pathlib.Path
        Holds ``slurm.conf`` and the daemons' key, sockets, state, spool, logs and pid files.
    partition : str
        The one (default) partition.
    processes : dict of str to subprocess.Popen
        The daemons (run in the foreground), by program name, in start order.
    """

    directory: Path
    partition: str = PARTITION
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        """The cluster's ``slurm.conf``."""
        return self.directory / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """This process's environment for clients and Snakemake: ``SLURM_CONF`` and the ``srun`` shim on PATH."""
        return {**os.environ, "SLURM_CONF": str(self.conf),
                "PATH": os.pathsep.join([str(self.directory / "bin"), os.environ.get("PATH", "")])}

    def log(self, daemon: str) -> str:
        """The log of ``daemon`` (munged, slurmctld or slurmd), empty if there is none yet."""
        path = self.directory / "logs" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tails(self, lines: int = 25) -> str:
        """The last ``lines`` lines of every daemon's log, each under a header naming the daemon."""
        return "\n".join(f"--- {daemon} log ---\n" + "\n".join(self.log(daemon).splitlines()[-lines:])
                         for daemon in ("munged", "slurmctld", "slurmd"))

    def client(self, *command: str) -> subprocess.CompletedProcess:
        """Run a SLURM client command (``sinfo``, ``squeue``, ...) against this cluster."""
        return subprocess.run([find_program(command[0]), *command[1:]], capture_output=True, text=True,
                              env=self.env, timeout=30)

    def node_state(self) -> str:
        """The node's state as ``sinfo`` shows it (``idle``, ``mix``, ``down*``, ...), empty if sinfo fails."""
        run = self.client("sinfo", "--noheader", "--Node", "--format=%t")
        return run.stdout.strip() if run.returncode == 0 else ""

    def stop(self) -> None:
        """Cancel all jobs, then stop the daemons by their process ids, newest first."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.client("scancel", f"--partition={self.partition}")
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _write_config(directory: Path, partition: str) -> None:
    """Write the cluster's munge key, ``slurm.conf`` and ``srun`` shim under ``directory``."""
    for name in ("munge", "state", "spool", "run", "logs", "bin"):
        (directory / name).mkdir(mode=0o700, parents=True, exist_ok=True)
    key = directory / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    host, node = node_definition()
    controller_port, node_port = free_ports(2)
    (directory / "slurm.conf").write_text(SLURM_CONF.format(
        host=host, node=node, partition=partition, controller_port=controller_port, node_port=node_port,
        munge_socket=directory / "munge" / "munge.socket", state=directory / "state", spool=directory / "spool",
        run=directory / "run", logs=directory / "logs"))
    shim = directory / "bin" / "srun"
    shim.write_text(SRUN_SHIM.format(conf=shlex.quote(str(directory / "slurm.conf")),
                                     srun=shlex.quote(find_program("srun"))))
    shim.chmod(0o700)


def _start_daemons(cluster: SlurmCluster) -> None:
    """Start munged, slurmctld and slurmd in the foreground (so their process ids are ours)."""
    munge = cluster.directory / "munge"
    commands = {
        "munged": ["--foreground", "--force", f"--socket={munge / 'munge.socket'}", f"--key-file={munge / 'munge.key'}",
                   f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
                   f"--log-file={cluster.directory / 'logs' / 'munged.log'}"],
        "slurmctld": ["-D", "-i", "-f", str(cluster.conf)],
        "slurmd": ["-D", "-f", str(cluster.conf)],
    }
    for daemon, arguments in commands.items():
        with (cluster.directory / "logs" / f"{daemon}.out").open("w") as output:
            cluster.processes[daemon] = subprocess.Popen([find_program(daemon), *arguments], env=cluster.env,
                                                         stdout=output, stderr=subprocess.STDOUT)
        if daemon == "munged":
            _wait_for(lambda: (munge / "munge.socket").exists(), cluster, "munged's socket", timeout=20)


def _wait_for(condition, cluster: SlurmCluster, what: str, timeout: float) -> None:
    """Poll ``condition`` until true; raise RuntimeError with the daemons' log tails on a timeout or a dead daemon."""
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [name for name, process in cluster.processes.items() if process.poll() is not None]
        if dead or time.monotonic() > deadline:
            outputs = "\n".join(f"--- {name} output ---\n" + (cluster.directory / "logs" / f"{name}.out").read_text()
                                for name in cluster.processes)
            problem = f"{', '.join(dead)} exited" if dead else f"no {what} after {timeout:.0f} s"
            raise RuntimeError(f"the test SLURM cluster did not start: {problem}\n{cluster.log_tails()}\n{outputs}")
        time.sleep(0.5)


def start_cluster(directory: Path, partition: str = PARTITION, timeout: float = 60) -> SlurmCluster:
    """Start a one-node cluster under ``directory`` and wait until its node is idle.

    Parameters
    ----------
    directory : pathlib.Path
        An empty, private directory (its path must be short enough for a Unix socket, under ~100 characters).
    partition : str
        Name of the one partition.
    timeout : float
        Seconds to wait for the node to become idle.

    Returns
    -------
    SlurmCluster
        The running cluster; call :meth:`SlurmCluster.stop` when done (also after a failure).

    Raises
    ------
    RuntimeError
        If a daemon exits or the node is not idle in time; the message holds the daemons' log tails. The daemons
        that did start are stopped first.
    """
    cluster = SlurmCluster(Path(directory), partition)
    _write_config(cluster.directory, partition)
    try:
        _start_daemons(cluster)
        _wait_for(lambda: cluster.node_state() == "idle", cluster, "idle node in sinfo", timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster
