"""tests/pods/pod_load.py — run open_loop.py as a pod's app and collect its summary.

The pod tests and the demo all drive a client pod the same way: open_loop.py inside the pod's
namespace (so the pod's rules intercept it), stopped by a line on its stdin, one JSON summary
line back. Standard library only (plus remora_harness.runfile), like pod_runner.py.
"""
import json
import subprocess

from remora_harness import runfile


def start_load(pod, target, rate, authority=None, seconds=120, connections=64,
               methods="GET,POST", timeout=10, records=None, tally=False):
    """Starts open_loop.py as pod's app (`pod.popen`, i.e. inside its namespace) sending to
    target (HOST:PORT) at rate requests/s until stop_load or seconds; records is a path for
    every request's record, tally adds the answering versions/instances/through-the-mesh counts
    (see open_loop.py). Returns the Popen once the generator said "started"; the caller owns it
    (stop it with stop_load; kill it on cleanup). Raises RuntimeError with its stderr if it did
    not start (the process is then reaped). Call from the test's thread."""
    argv = ["/usr/bin/python3", runfile("tests/pods/open_loop.py"), "--target", target,
            "--rate", str(rate), "--seconds", str(seconds), "--connections", str(connections),
            "--methods", methods, "--timeout", str(timeout), "--stdin-stop"]
    if authority:
        argv += ["--authority", authority]
    if records:
        argv += ["--records", records]
    if tally:
        argv.append("--tally")
    p = pod.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    if p.stdout.readline().strip() != "started":
        p.kill()
        raise RuntimeError("load generator did not start: %s" % p.communicate(timeout=10)[1])
    return p


def stop_load(p, timeout=60):
    """Stops a generator from start_load (a line on its stdin: it answers what is in flight, up to
    its --timeout) and returns its summary dict. Raises RuntimeError with its stderr if it printed
    no summary. Call from the thread that started it."""
    out, err = p.communicate("stop\n", timeout=timeout)
    lines = out.strip().splitlines()
    if not lines:
        raise RuntimeError("load generator printed nothing; stderr:\n%s" % err)
    return json.loads(lines[-1])


def instances_reached(pod, target, names, timeout=10):
    """GETs http://target/probe from inside pod (as its app: intercepted) until every instance in
    names has answered or timeout seconds pass; returns the set of instances that answered (the
    test backend's "instance"). Tells when a client sidecar's snapshot lists those endpoints."""
    probe = ("import json,sys,time,urllib.request\nseen=set()\nend=time.time()+%f\n"
             "while time.time()<end and not set(sys.argv[1:])<=seen:\n"
             " try:\n  r=urllib.request.urlopen('http://%s/probe',timeout=2)\n"
             "  seen.add(json.loads(r.read())['instance'])\n"
             " except Exception: time.sleep(0.1)\n"
             "print(' '.join(sorted(seen)))\n" % (timeout, target))
    return set(pod.exec("/usr/bin/python3", "-c", probe, *names).stdout.split())
