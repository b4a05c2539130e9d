"""bench/memcharge.py — the memory a process is charged for in its own memory cgroup, the figure
Kubernetes shows for a container (`kubectl top`, container_memory_working_set_bytes).

RSS counts every shared-library page the process maps, even pages that a hundred other
processes map too. A container's memory cgroup is charged for what it allocates and for the
page-cache pages it brings in first; library pages already in memory (another pod on the node
runs the same image) stay charged to whoever loaded them. So the benchmark starts one more,
idle, instance of each proxy in a fresh memory cgroup while the first instance runs — the second
sidecar on a node — and reads the cgroup's working set: usage minus inactive file pages, as the
kubelet computes it.

Works with cgroup v1 (memory.usage_in_bytes) and v2 (memory.current). Needs root.
"""
import os
import signal
import subprocess
import time

from cpubudget import V2_ROOT, v2_has

V1_ROOT = "/sys/fs/cgroup/memory"


def _stat(path, key):
    with open(os.path.join(path, "memory.stat")) as f:
        for line in f:
            k, v = line.split()
            if k == key:
                return int(v)
    return 0


def available():
    return os.geteuid() == 0 and (v2_has("memory") or os.path.isdir(V1_ROOT))


def working_set_kb(argv, ready, name, settle=1.0):
    """Starts argv (its own session) in a new memory cgroup, waits for ready() and `settle`
    seconds, and returns the cgroup's working set in kB. The process group is killed after."""
    v2 = v2_has("memory")
    path = os.path.join(V2_ROOT if v2 else V1_ROOT, name)
    os.makedirs(path, exist_ok=True)

    def enter():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, preexec_fn=enter)
    try:
        ready()
        time.sleep(settle)
        with open(os.path.join(path, "memory.current" if v2 else "memory.usage_in_bytes")) as f:
            usage = int(f.read())
        inactive = _stat(path, "inactive_file" if v2 else "total_inactive_file")
        return max(0, usage - inactive) // 1024
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        for _ in range(50):  # the group can be removed once its last task is gone
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.05)
