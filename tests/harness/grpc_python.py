"""tests/harness/grpc_python.py — makes `import grpc` work in process-level tests.

Debian's python3-grpcio (matched to the system libgrpc) lives in /usr/bin/python3's
dist-packages. When a test runs under another python3 (pyenv first on PATH, say), importing this
module re-executes the test with /usr/bin/python3, same argv, before anything else happens; under
a python3 that has grpc it does nothing. Import it first, before grpc and the generated *_pb2
modules:

    import grpc_python  # noqa: F401  (first: re-execs under /usr/bin/python3 for grpc)
"""
import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"


def ensure_grpc():
    """Returns when `import grpc` works; re-execs under Debian's python3 when it would not; raises
    the ImportError when no python3 here has grpc."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        if os.path.exists(DEBIAN_PYTHON) and \
                os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON):
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
        raise


ensure_grpc()
