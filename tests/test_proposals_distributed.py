"""`torchrun --nproc_per_node 2` (gloo, CPU) shards a propose run and merges one file equal to a single run."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from multilabelfy.proposals import store
from multilabelfy.scripts import cli


@pytest.mark.slow
def test_two_process_torchrun_equals_a_single_process_run(photo_dataset, tmp_path):
    common = ["--model", "test_resnet", "--weights", "random", "--top-k", "5", "--workers", "0",
              "--batch-size", "1", "--chunk-size", "1", "--no-progress"]
    single = tmp_path / "single.parquet"
    assert cli.main(["propose", str(photo_dataset), "--out", str(single), *common]) == 0

    sharded = tmp_path / "sharded.parquet"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "--module", "multilabelfy.scripts.cli",
         "propose", str(photo_dataset), "--out", str(sharded), "--device", "cpu", *common],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("proposals for 4 of 4 images") == 1  # only rank 0 reports
    pd.testing.assert_frame_equal(store.read_proposals(sharded), store.read_proposals(single))
    assert not store.parts_dir(sharded).exists()
