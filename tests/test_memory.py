"""Many exports in one process keep resident memory flat.

`export_on_improvement` writes, reloads (`tf.saved_model.load`) and verifies an
export at every improvement; a leak per export would grow a long run without
bound. Runs in its own process (see memory_script.py) with a hard timeout.
"""

import pytest

from subprocess_runs import run_script

pytestmark = pytest.mark.slow  # its own process: skipped by `make test-fast`

WARM_UP = 3  # first exports trace functions and fill caches: not a leak
EXPORTS = 50
LIMIT_MB = 100


def test_fifty_exports_on_improvement_keep_memory_flat():
    result = run_script("memory_script.py", WARM_UP + EXPORTS, timeout=600)
    assert result["exported_epochs"] == list(range(1, WARM_UP + EXPORTS + 1))
    rss = result["rss_mb"]
    growth = rss[-1] - rss[WARM_UP - 1]
    assert growth < LIMIT_MB, f"RSS grew {growth:.0f} MB over {EXPORTS} exports: {rss}"
