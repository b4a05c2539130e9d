"""bench/cpubudget.py — run processes under a CPU budget (a cgroup CPU quota), for throughput runs.

On this two-core machine a proxy pinned to its own core is never the bottleneck: wrk and the
backend share the other core and saturate first, so wrk's req/s measures them. Giving each proxy
the same fraction of a core makes the proxy the bottleneck, and wrk's req/s then is the proxy's
throughput at that budget — the usual "requests per second per core" comparison, measured the
way the issue states it (wrk's req/s, same run, same workload).

Works with cgroup v2 (cpu.max) and v1 (cpu.cfs_quota_us). Needs root; `available()` says whether
it can be used here.
"""
import os

V2_ROOT = "/sys/fs/cgroup"
V1_ROOT = "/sys/fs/cgroup/cpu"
PERIOD_US = 10000  # short periods: throttling in 5 ms slices, not 50 ms stalls


def v2_has(controller):
    """Whether cgroup v2 is mounted at V2_ROOT with `controller` ("cpu", "memory") available."""
    try:
        with open(os.path.join(V2_ROOT, "cgroup.controllers")) as f:
            return controller in f.read().split()
    except OSError:
        return False


class CpuBudget:
    """One cgroup; set(fraction) caps the CPU of every process moved in with add()."""

    def __init__(self, name):
        self.v2 = v2_has("cpu")
        root = V2_ROOT if self.v2 else V1_ROOT
        self.path = os.path.join(root, name)
        os.makedirs(self.path, exist_ok=True)
        if self.v2:  # the parent must delegate the cpu controller to its children
            try:
                with open(os.path.join(V2_ROOT, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
            except OSError:
                pass

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def add(self, pid):
        """Moves the process (every thread of it) into the group."""
        self._write("cgroup.procs", str(pid))

    def set(self, fraction):
        """Caps the group at `fraction` of one CPU; None lifts the cap."""
        if self.v2:
            self._write("cpu.max", "max %d" % PERIOD_US if fraction is None
                        else "%d %d" % (int(PERIOD_US * fraction), PERIOD_US))
        else:
            self._write("cpu.cfs_period_us", str(PERIOD_US))
            self._write("cpu.cfs_quota_us", "-1" if fraction is None else str(int(PERIOD_US * fraction)))

    def remove(self):
        """Moves the processes back to the root group and deletes this one."""
        root = V2_ROOT if self.v2 else V1_ROOT
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
            for pid in pids:
                with open(os.path.join(root, "cgroup.procs"), "w") as f:
                    f.write(pid)
            os.rmdir(self.path)
        except OSError:
            pass


def available(name="remora-bench-probe"):
    """Whether a CPU budget can be set here (root, a cpu controller)."""
    try:
        b = CpuBudget(name)
        b.set(0.5)
        b.set(None)
        b.remove()
        return True
    except OSError:
        return False
