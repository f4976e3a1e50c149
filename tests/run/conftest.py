"""The small grid run once by the local executor, the store every other executor's is compared with."""

from __future__ import annotations

import pytest

from tests.run import grids


@pytest.fixture(scope="session")
def local_grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local-grid")
    config = grids.write_config(folder)
    done = grids.saftool("run", str(config), "--jobs", "2", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder
