"""Data-parallel training on MPI (minigrad.distributed): ``mpiexec -n 2`` runs of
tests/helpers/mpi_worker.py compared with one process over the whole batch, the ends of faulty
jobs, the DataLoader's shards, and the world of one. The MPI tests skip when the extra
``distributed`` (mpi4py and an MPI with mpiexec) is not installed."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from helpers import distributed as D
from helpers.dataset_files import real_data_root
from minigrad import nn
from minigrad.data import ArrayDataset, DataLoader

needs_mpi = pytest.mark.skipif(
    D.mpiexec() is None,
    reason="the 'distributed' extra is not installed (mpi4py and mpiexec): "
           "pip install -e '.[distributed]'")


def test_mpi_is_installed_where_it_is_required():
    # .ci/run sets MINIGRAD_REQUIRE_MPI=1: there a missing install must fail, not skip quietly
    if os.environ.get("MINIGRAD_REQUIRE_MPI") == "1":
        assert D.mpiexec() is not None, "MINIGRAD_REQUIRE_MPI=1, but mpi4py or mpiexec is " \
            "missing (the test extra installs them on Linux)"


#: A faulty job must end within this many seconds (start-up included), not hang.
FAULT_SECONDS = 20


def worker(case, tmp_path):
    """Run the worker's ``case`` on 2 ranks; the arrays each rank saved."""
    code, output, _ = D.run_worker(case, tmp_path)
    assert code == 0, output
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(D.RANKS)]


def assert_close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=what)


def single_process(kind, optimizer_name):
    net = D.build(kind)
    return D.train(net, net, D.optimizer(optimizer_name, net.parameters()))


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    return worker("train", tmp_path_factory.mktemp("train"))


# -- gradients and steps --------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("kind", ["plain", "bn_eval"])
@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_two_ranks_with_half_batches_match_one_process_with_the_whole(train_run, kind,
                                                                      optimizer_name):
    expected = single_process(kind, optimizer_name)
    prefix = f"{kind}.{optimizer_name}."
    for key, value in expected.items():
        ranks = [saved[prefix + key] for saved in train_run]
        # the first step's averaged gradients, and the parameters after STEPS steps
        assert_close(ranks[0], value, f"rank 0 {key}")
        if key.startswith("param."):
            # every rank took the same steps: the same bits, not just close
            np.testing.assert_array_equal(ranks[1], ranks[0], err_msg=key)
        else:
            assert_close(ranks[1], value, f"rank 1 {key}")


@needs_mpi
def test_no_sync_accumulates_locally_then_averages_the_sum(train_run):
    net = D.build("plain")
    expected = D.accumulate(net, net)
    for key, value in expected.items():
        for saved in train_run:
            assert_close(saved[f"accumulate.{key}"], value, key)


@needs_mpi
def test_a_parameter_without_gradient_is_an_error_at_the_next_call(train_run):
    for saved in train_run:
        message = str(saved["unused_error"])
        assert "spare.weight" in message and "spare.bias" in message
        assert "requires_grad=False" in message


@needs_mpi
def test_the_ranks_shards_of_an_epoch_are_disjoint_and_cover_the_data_set(train_run):
    shards = [saved["shard"] for saved in train_run]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(np.concatenate(shards)) == list(range(21))


# -- SyncBatchNorm ---------------------------------------------------------------------------------
@needs_mpi
def test_sync_batchnorm_over_two_halves_equals_batchnorm_over_the_whole_batch(tmp_path):
    ranks = worker("sync_bn", tmp_path)
    net = D.build("bn_train")
    norm = net[1]
    outputs = []
    norm.register_forward_hook(lambda module, args, y: outputs.append(y.data.copy()))
    opt = D.optimizer("sgd", net.parameters())
    for step, (images, labels) in enumerate(D.batches()[:2]):
        x = minigrad.tensor(images, requires_grad=True)
        opt.zero_grad()
        F.cross_entropy(net(x), minigrad.tensor(labels)).backward()
        for r, saved in enumerate(ranks):
            part = D.half(r)
            assert_close(saved[f"{step}.output"], outputs[-1][part], f"rank {r} output")
            # a rank's input gradient is that of the sum of the ranks' losses, each a mean
            # over its half: RANKS times the gradient of the whole batch's mean loss
            assert_close(saved[f"{step}.input_grad"], D.RANKS * x.grad[part],
                         f"rank {r} input gradient")
            for name, p in net.named_parameters():
                assert_close(saved[f"{step}.grad.{name}"], p.grad, f"rank {r} grad {name}")
        opt.step()
        for name, buffer in net.named_buffers():
            for r, saved in enumerate(ranks):
                assert_close(saved[f"{step}.{name}"], buffer, f"rank {r} {name}")


# -- faults ----------------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("case, message", [
    ("mismatch", "the model on rank 1 differs from rank 0's: '1.weight' has shape (5, 192)"),
    ("raise", "RuntimeError: rank 1 fails on purpose"),
    ("kill", "Killed (signal 9)"),
])
def test_a_faulty_rank_ends_the_whole_job_with_an_error_in_seconds(tmp_path, case, message):
    code, output, seconds = D.run_worker(case, tmp_path, timeout=60)
    assert code is not None, f"the job hung: {output}"
    assert code != 0, output
    assert message in output
    if case != "kill":
        assert "aborting all ranks" in output
    assert seconds < FAULT_SECONDS, output


# -- the examples ----------------------------------------------------------------------------------
FCN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                   "fcn_mnist.py")


@needs_mpi
def test_distributed_example_trains_as_one_process_and_resumes_exactly(tmp_path):
    """fcn_mnist (no augmentation: no canvases) on 2 ranks with SyncBatchNorm sees the batches and
    statistics one process sees: the same epochs to float32 rounding; stopped and resumed, it
    continues exactly; rank 0 alone reports."""
    common = [FCN, "--data-dir", real_data_root("mnist"), "--limit", "256", "--test-limit",
              "100", "--batch-size", "64", "--width", "4", "--canvas", "0", "--no-progress",
              "--epochs", "2", "--threads", "1", "--train-canvas", "0", "--freeze-bn", "0",
              "--shift", "0", "--no-figures"]

    def history(out):
        results = json.load(open(tmp_path / out / "fcn_mnist_results.json"))
        return results["processes"], [[h[k] for k in ("train_loss", "train_acc", "test_loss",
                                                       "test_acc")] for h in results["history"]]

    single = subprocess.run([sys.executable, *common, "--out", tmp_path / "single"],
                            capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr
    distributed = [*common, "--distributed", "--sync-bn"]
    code, straight, _ = D.run_mpi([*distributed, "--out", tmp_path / "straight"], timeout=120)
    assert code == 0, straight
    assert straight.count("epoch 1:") == 1 and "2 processes" in straight
    for extra in (["--stop-after", "1"], ["--resume"]):
        code, output, _ = D.run_mpi([*distributed, "--out", tmp_path / "resumed", *extra],
                                    timeout=120)
        assert code == 0, output
    assert history("straight") == history("resumed")
    processes, expected = history("single")
    assert processes == 1 and history("straight")[0] == 2
    np.testing.assert_allclose(history("straight")[1], expected, rtol=1e-5)


# -- without mpiexec -------------------------------------------------------------------------------
WORLD_OF_ONE = """
import sys
import numpy as np
import minigrad
assert "mpi4py" not in sys.modules, "import minigrad loaded MPI"
from minigrad import distributed as dist, nn
hook = sys.excepthook
dist.init(); dist.init()
assert (dist.rank(), dist.world_size()) == (0, 1)
assert sys.excepthook is hook
assert dist.all_reduce(3) == 3 and dist.all_reduce(4.0, op="mean") == 4.0
np.testing.assert_array_equal(dist.all_reduce(np.arange(3.0), op="max"), [0.0, 1.0, 2.0])
dist.barrier()
minigrad.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
synced = nn.SyncBatchNorm.convert_sync_batchnorm(net)
assert synced is net and type(net[1]) is nn.SyncBatchNorm and len(net) == 4
model = dist.DistributedDataParallel(net)
x = minigrad.tensor(np.random.default_rng(0).normal(size=(4, 1, 4, 4)).astype(np.float32))
model(x).sum().backward()
assert all(p.grad is not None for p in net.parameters())
print("ok")
"""


def test_without_mpiexec_the_world_is_this_process_alone():
    result = subprocess.run([sys.executable, "-c", WORLD_OF_ONE], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_sync_batchnorm_in_a_world_of_one_is_batchnorm2d():
    # the default world is not joined in this process: SyncBatchNorm in eval mode asks nothing
    net = D.build("bn_eval")
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(D.build("bn_eval"))
    x = minigrad.tensor(D.batches()[0][0])
    np.testing.assert_array_equal(synced(x).data, net(x).data)
    assert [n for n, _ in synced.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_set_blas_threads_finds_numpys_openblas():
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    found = minigrad.runtime.set_blas_threads(os.cpu_count() or 1)   # the default again
    assert found == ("openblas" in blas.lower())


# -- sharding ------------------------------------------------------------------------------------
@pytest.mark.parametrize("count, batch, ranks", [(21, 4, 2), (24, 4, 3), (10, 3, 4), (27, 3, 4),
                                                 (7, 2, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_together_are_the_single_process_batches(count, batch, ranks, drop_last):
    dataset = ArrayDataset(np.zeros((count, 1, 1, 1), np.uint8), np.arange(count))

    def labels(loader):
        return [lab for _, lab in loader]

    whole = labels(DataLoader(dataset, batch * ranks, shuffle=True, drop_last=drop_last,
                              seed=5))
    shards = [labels(DataLoader(dataset, batch, shuffle=True, drop_last=drop_last, seed=5,
                                shard=(r, ranks))) for r in range(ranks)]
    for r, shard in enumerate(shards):
        assert len(shard) == len(DataLoader(dataset, batch, drop_last=drop_last,
                                            shard=(r, ranks)))
    # step by step, the ranks' batches side by side are the single process's batch
    for step, expected in enumerate(whole):
        parts = [shard[step] for shard in shards if step < len(shard)]
        np.testing.assert_array_equal(np.concatenate(parts), expected)
    every = np.concatenate([b for shard in shards for b in shard] or [np.empty(0, int)])
    assert len(set(every)) == len(every)                      # disjoint
    if not drop_last:
        assert sorted(every) == list(range(count))            # covering
    if drop_last:                                              # the same number of steps
        assert len({len(shard) for shard in shards}) == 1


def test_shard_validation():
    dataset = ArrayDataset(np.zeros((4, 1, 1, 1), np.uint8), np.arange(4))
    for shard, error in [((2, 2), ValueError), ((-1, 2), ValueError), (3, TypeError),
                         ((0.0, 2), TypeError), ((0, 1, 2), TypeError)]:
        with pytest.raises(error, match="shard"):
            DataLoader(dataset, 2, shard=shard)


def test_ranks_draw_different_augmentations_from_one_seed():
    loaders = [DataLoader(ArrayDataset(np.zeros((4, 1, 1, 1), np.uint8), np.arange(4)), 2,
                          seed=1, shard=(r, 2)) for r in range(2)]
    draws = [loader._augment_rng.random(3) for loader in loaders]
    assert not np.array_equal(draws[0], draws[1])
    single = DataLoader(ArrayDataset(np.zeros((4, 1, 1, 1), np.uint8), np.arange(4)), 2, seed=1)
    alone = DataLoader(ArrayDataset(np.zeros((4, 1, 1, 1), np.uint8), np.arange(4)), 2, seed=1,
                       shard=(0, 1))
    np.testing.assert_array_equal(single._augment_rng.random(3), alone._augment_rng.random(3))
