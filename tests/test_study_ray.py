"""Study grids on a real local Ray cluster (2 CPU slots): runs overlap, a killed worker's run
resumes from its checkpoint, and the TPU slice and GPU host requests are built without
hardware."""

import dataclasses
import json
import logging
import os
import re

import jax
import numpy as np
import pytest

from polyglot_jax.errors import ConfigError, JobFailedError
from polyglot_jax.studies import catalog, cluster, ray_nodes, runner, slices
from polyglot_jax.studies.plan import Options
from polyglot_jax.testing import mock_server, study_fixtures
from polyglot_jax.training import runs

ray = pytest.importorskip("ray")

BINDINGS = ("TrainConfig.checkpoint_every=1",)  # checkpoints 1, 2, 3 of the quick runs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_data")
    study_fixtures.write_fixture_data(folder, "quick")
    return folder


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """A persistent compilation cache shared by this process and the Ray workers."""
    import jax

    folder = str(tmp_path_factory.mktemp("jax_cache"))
    env = {
        "JAX_COMPILATION_CACHE_DIR": folder,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return env


@pytest.fixture(scope="module")
def ray_cluster(jax_cache):
    """A local Ray with two CPU slots, started and stopped here."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {**jax_cache, "OPENAI_API_KEY": "sk-test"}},
    )
    yield
    ray.shutdown()


def _options(root, data_dir, server, **kw):
    judge = f"openai:mock@{server.base_url}"
    return Options(
        root=str(root), quick=True, data_dir=str(data_dir), judge=judge, benchmarks=False,
        bindings=BINDINGS, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reference(data_dir, jax_cache, tmp_path_factory):
    """The quick polyglots study (lora_k1, lora_k3) run in one process, without Ray."""
    root = tmp_path_factory.mktemp("one_process")
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "sk-test")
    with mock_server.MockChatServer() as server:
        runner.run(catalog.STUDIES["polyglots"], _options(root, data_dir, server))
    mp.undo()
    return root


def _state(run_dir):
    return json.loads((run_dir / "study_state.json").read_text())


def _report(root, name):
    """A report file, the code's commit in its provenance left out (this checkout may get a
    commit between the two runs), and the accelerator table's body (wall times and nodes)."""
    text = re.sub(r"\(([0-9a-f]{10})\)", "(COMMIT)", (root / "report" / name).read_text())
    return re.sub(
        r"## Accelerator time\n.*?(?=\n## |\Z)", "## Accelerator time\n", text, flags=re.S
    )


def test_two_runs_at_once_and_the_same_report(
    ray_cluster, reference, data_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    caplog.set_level(logging.INFO, logger=cluster.__name__)
    with mock_server.MockChatServer() as server:
        options = _options(tmp_path, data_dir, server, cluster="ray", cpus_per_run=1)
        summary = runner.run(catalog.STUDIES["polyglots"], options)
        assert server.requests == 24  # 4 prompts x 3 languages x 2 runs, each judged once
    one, three = (_state(tmp_path / r)["intervals"] for r in ("lora_k1", "lora_k3"))
    assert one["train"][0] < three["train"][1] and three["train"][0] < one["train"][1]
    assert one["train"][2] != "driver" and one["judge"][2] == "driver"
    assert (tmp_path / "report" / "study.md").read_text() == summary
    for name in ("study.md", "report.md", "scores.csv"):
        assert _report(tmp_path, name) == _report(reference, name)
    train = re.search(r"\| lora_k1 \| train \| (\S+) \|", summary)
    assert train and train.group(1) == one["train"][2] != "local"  # the Ray node it ran on
    lines = caplog.messages
    assert "lora_k1 train: queued (1 CPU)" in lines
    assert any(m.startswith("lora_k3 train: running on ") for m in lines)
    assert any(m.startswith("lora_k1 judge: done in ") for m in lines)
    # The same study continues without Ray: every stage is done.
    plan = runner.run(catalog.STUDIES["polyglots"], options, dry_run=True)
    assert "[todo]" not in plan and plan.splitlines()[-1].startswith("## report [done]")


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_resumes(
    ray_cluster, reference, data_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv(cluster.CRASH_ENV, "lora_k1:checkpoint_1")  # first attempt: exit
    caplog.set_level(logging.INFO, logger=cluster.__name__)
    with mock_server.MockChatServer() as server:
        options = _options(tmp_path, data_dir, server, cluster="ray", cpus_per_run=1)
        runner.run(catalog.STUDIES["polyglots"], options, ["lora_k1"])
        assert server.requests == 12  # the judge asked once per item
    assert any(m.startswith("lora_k1 train: worker died") for m in caplog.messages)
    assert "lora_k1 train: queued (1 CPU, attempt 2 of 4)" in caplog.messages
    assert (tmp_path / "lora_k1" / "checkpoint_3").is_dir()
    _, resumed = runs.load_model(tmp_path / "lora_k1")  # the last checkpoint's parameters
    _, whole = runs.load_model(reference / "lora_k1")
    leaves = jax.tree.leaves(whole)
    assert leaves and len(jax.tree.leaves(resumed)) == len(leaves)
    for x, y in zip(jax.tree.leaves(resumed), leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    answers = sorted((tmp_path / "lora_k1" / "infer").glob("*.jsonl"))
    assert [a.read_text() for a in answers] == [
        (reference / "lora_k1" / "infer" / a.name).read_text() for a in answers
    ]


def test_a_user_error_is_not_retried(ray_cluster, data_dir, tiny_config, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=cluster.__name__)
    other = dataclasses.replace(tiny_config, num_layers=7).to_dict()  # not the run's model
    (tmp_path / "lora_k1").mkdir()
    (tmp_path / "lora_k1" / "model_config.json").write_text(json.dumps(other))
    options = Options(
        root=str(tmp_path), quick=True, data_dir=str(data_dir), benchmarks=False, cluster="ray"
    )
    with pytest.raises(JobFailedError, match=r"run lora_k1, stage train: RunDirError: ") as e:
        runner.run(catalog.STUDIES["polyglots"], options, ["lora_k1"])
    assert "\n" not in str(e.value)
    assert not any("attempt 2" in m for m in caplog.messages)


def test_a_v4_32_slice_request_without_hardware():
    request = slices.request("v4-32")
    assert (request.kind, request.hosts, request.topology, request.version) == (
        "tpu", 4, "2x2x4", "v4",
    )  # fmt: skip
    assert request.bundles == [{"CPU": 1, "TPU": 4}] * 4
    assert request.task_options() == {"num_cpus": 1, "resources": {"TPU": 4}}
    assert slices.request("v6e-8").bundles == [{"CPU": 1, "TPU": 8}]  # one 8-chip host
    assert slices.request("v5litepod-16").hosts == 4
    with pytest.raises(ConfigError, match=r"v4-31.*unknown TPU slice type"):
        slices.request("v4-31")


def test_a_two_host_gpu_request_and_its_coordinator():
    request = slices.request(gpus_per_host=8, hosts=2)
    assert request.bundles == [{"CPU": 1.0, "GPU": 8.0}] * 2
    assert request.strategy == "STRICT_SPREAD"  # one host per node
    assert request.task_options() == {"num_cpus": 1.0, "num_gpus": 8.0}
    envs = [slices.host_env("10.0.0.2:8476", 2, i) for i in range(2)]
    assert envs == [
        {"JAX_COORDINATOR_ADDRESS": "10.0.0.2:8476", "JAX_NUM_PROCESSES": "2",
         "JAX_PROCESS_ID": str(i)}
        for i in range(2)
    ]  # fmt: skip
    assert slices.host_env("10.0.0.2:8476", 1, 0) == {}
    assert slices.host_env("auto", 4, 3) == {"JAX_COORDINATOR_ADDRESS": "auto"}  # TPU slice
    assert slices.request(cpus_per_run=2).task_options() == {"num_cpus": 2.0}


def test_a_gpu_placement_group_on_a_cluster_without_gpus(ray_cluster):
    """The group is made with the request's bundles; with no GPU here it stays pending."""
    from ray.util import placement_group_table, remove_placement_group

    group = slices.request(gpus_per_host=1, hosts=2).placement_group("run-train-0")
    try:
        table = placement_group_table(group)
        assert table["strategy"] == "STRICT_SPREAD"
        assert list(table["bundles"].values()) == [{"CPU": 1.0, "GPU": 1.0}] * 2
        assert not group.wait(timeout_seconds=0.5)
    finally:
        remove_placement_group(group)


@pytest.mark.parametrize("value", ["ray://", "ray://host", "dask", "ray://-x:1", "ray://h:99999"])
def test_bad_cluster_addresses_are_refused(value, tmp_path):
    with pytest.raises(ConfigError, match="--cluster"):
        Options(root=str(tmp_path), cluster=value)
    assert slices.parse_cluster("ray") is None
    assert slices.parse_cluster("ray://10.0.0.2:10001") == "ray://10.0.0.2:10001"


def test_ray_on_tpu_vms_commands():
    head, _ = ray_nodes.commands(["head", "--name=pj-head", "--zone=us-central2-b", "--dry_run"])
    assert head[0][-2:] == [
        "--worker=0",
        "--command=cd ~/polyglot_jax && ray start --head --port=6379 "
        "--dashboard-host=0.0.0.0 --disable-usage-stats",
    ]
    argv = ["workers", "--name=pj-a,pj-b", "--zone=us-central2-b", "--head=10.130.0.2"]
    workers, dry_run = ray_nodes.commands(argv)
    assert not dry_run and [c[5] for c in workers] == ["pj-a", "pj-b"]
    assert all("ray start --address=10.130.0.2:6379" in c[-1] for c in workers)
    with pytest.raises(ConfigError, match="--head"):
        ray_nodes.commands(["workers", "--name=pj-a", "--zone=z", "--head=--x"])
    with pytest.raises(ConfigError, match="--name"):
        ray_nodes.commands(["stop", "--name=--impersonate", "--zone=z"])


def test_host_0_picks_the_coordinator_and_the_other_hosts_get_it(monkeypatch):
    """A run's host tasks, before their stage: host 0's address goes to every host."""
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    first = next(cluster.stage_task(None, None, None, "train", 2, None, 0, {}))
    address = first["coordinator"]
    assert address.startswith(first["node"] + ":") and int(address.rsplit(":", 1)[1]) > 0
    assert os.environ["JAX_COORDINATOR_ADDRESS"] == address
    assert (os.environ["JAX_NUM_PROCESSES"], os.environ["JAX_PROCESS_ID"]) == ("2", "0")
    other = next(cluster.stage_task(None, None, None, "train", 2, address, 1, {}))
    assert other["coordinator"] == address and os.environ["JAX_PROCESS_ID"] == "1"
