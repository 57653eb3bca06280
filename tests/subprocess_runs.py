"""Running test scripts in fresh Python processes, with hard timeouts.

Some setups must exist before TensorFlow is imported (`TF_USE_LEGACY_KERAS`,
logical devices, `TF_CONFIG`), so their tests run a script in a subprocess.
Scripts report by printing one line `RESULT <json>`.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)
RESULT_PREFIX = "RESULT "


def script_env(**extra):
    """The current environment plus the repo and tests/ on PYTHONPATH."""
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env.pop("TF_USE_LEGACY_KERAS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, TESTS_DIR, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def script_command(script, *args):
    return [sys.executable, os.path.join(TESTS_DIR, script), *map(str, args)]


def parse_result(output, what):
    """The `RESULT` json of a finished script; fails the test with its output otherwise."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    pytest.fail(f"{what} printed no RESULT line. Output:\n{output[-6000:]}")


def run_script(script, *args, timeout, **env):
    """Runs `tests/<script>` and returns its RESULT; a hang fails after `timeout` s."""
    try:
        done = subprocess.run(
            script_command(script, *args), env=script_env(**env), timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} did not finish in {timeout}s. Output:\n{(e.output or '')[-6000:]}")
    if done.returncode != 0:
        pytest.fail(f"{script} exited with {done.returncode}. Output:\n{done.stdout[-6000:]}")
    return parse_result(done.stdout, script)


def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1 (held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def print_result(**values):
    """For scripts: the one line the parent test reads."""
    print(RESULT_PREFIX + json.dumps(values), flush=True)
