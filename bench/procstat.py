"""bench/procstat.py — what the benchmarks read from /proc about the processes they measure."""
import os


def with_children(pid):
    """The process and its direct children (nginx's master and worker)."""
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            out += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return out


def cpu_seconds(pids):
    """User + system CPU time of the processes, in seconds."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tck
    return total


def status_kb(pid, key):
    """A kB figure of /proc/PID/status (VmRSS, RssAnon, ...); 0 when absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
