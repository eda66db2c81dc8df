"""The SLURM_* environment of a job and of its steps, built the way slurmd and srun build it."""

from __future__ import annotations

import logging

from orchestrator.scheduler.job import Job
from orchestrator.slurm.hostlist import expand

log = logging.getLogger(__name__)

__all__ = ["batch_env", "per_node_counts", "step_env"]


def per_node_counts(values: list[int]) -> str:
    """Slurm's run-length form: ``[48, 48, 24]`` -> ``48(x2),24``."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        n = j - i + 1
        out.append(f"{values[i]}(x{n})" if n > 1 else str(values[i]))
        i = j + 1
    return ",".join(out)


def job_env(job: Job, tasks_per_node: dict[str, int], controller: str, port: int) -> dict[str, str]:
    """Variables every process of the job sees, whatever node it is on."""
    nodes = expand(job.nodes) if job.nodes else []
    env = {
        "SLURM_JOB_ID": str(job.job_id),
        "SLURM_JOBID": str(job.job_id),
        "SLURM_JOB_NAME": job.name,
        "SLURM_JOB_NODELIST": job.nodes,
        "SLURM_NODELIST": job.nodes,
        "SLURM_JOB_NUM_NODES": str(len(nodes)),
        "SLURM_NNODES": str(len(nodes)),
        "SLURM_JOB_PARTITION": job.partition,
        "SLURM_JOB_ACCOUNT": job.account,
        "SLURM_JOB_QOS": job.qos,
        "SLURM_JOB_CPUS_PER_NODE": per_node_counts([job.cpus_per_node.get(n, 0) for n in nodes]),
        "SLURM_TASKS_PER_NODE": per_node_counts([tasks_per_node.get(n, 0) for n in nodes]),
        "SLURM_SUBMIT_DIR": job.work_dir,
        "SLURM_SUBMIT_HOST": job.submit_host,
        "SLURM_CLUSTER_NAME": job.cluster,
        "SLURM_JOB_UID": str(job.uid),
        "SLURM_JOB_USER": job.user,
        "SLURM_JOB_GID": str(job.gid),
        "SLURM_PRIO_PROCESS": "0",
        "SLURM_WORKING_CLUSTER": f"{job.cluster}:{controller}:{port}:9984:109",
    }
    if job.ntasks_explicit or not job.batch:
        env["SLURM_NTASKS"] = str(job.num_tasks)
        env["SLURM_NPROCS"] = str(job.num_tasks)
    if job.ntasks_per_node:
        env["SLURM_NTASKS_PER_NODE"] = str(job.ntasks_per_node)
    if job.cpus_per_task > 1:
        env["SLURM_CPUS_PER_TASK"] = str(job.cpus_per_task)
    if job.mem_per_cpu:
        env["SLURM_MEM_PER_CPU"] = str(job.mem_per_cpu)
    elif job.mem_per_node:
        env["SLURM_MEM_PER_NODE"] = str(job.mem_per_node)
    if job.dependency_spec:
        env["SLURM_JOB_DEPENDENCY"] = job.dependency_spec
    if job.restart_count:
        env["SLURM_RESTART_COUNT"] = str(job.restart_count)
    if job.array_task_id is not None:
        from orchestrator.slurm.arrays import parse_array

        spec = parse_array(job.array_spec, max_array_size=1 << 31) if job.array_spec else None
        env["SLURM_ARRAY_JOB_ID"] = str(job.array_job_id)
        env["SLURM_ARRAY_TASK_ID"] = str(job.array_task_id)
        if spec is not None:
            env["SLURM_ARRAY_TASK_COUNT"] = str(spec.count)
            env["SLURM_ARRAY_TASK_MIN"] = str(spec.ids[0])
            env["SLURM_ARRAY_TASK_MAX"] = str(spec.ids[-1])
            env["SLURM_ARRAY_TASK_STEP"] = str(spec.step)
    if job.gres:
        env["SLURM_GPUS_ON_NODE"] = "0"
    # sbatch(1): each only when its option was given
    if job.req_gpus:
        env["SLURM_GPUS"] = job.req_gpus
    if job.req_gpus_per_node:
        env["SLURM_GPUS_PER_NODE"] = job.req_gpus_per_node
    if job.gpus_per_task:
        env["SLURM_GPUS_PER_TASK"] = str(job.gpus_per_task)
    return env


def node_env(job: Job, node: str, node_index: int) -> dict[str, str]:
    """Variables that depend on the node a process runs on."""
    env = {
        "SLURMD_NODENAME": node,
        "SLURM_NODEID": str(node_index),
        "SLURM_CPUS_ON_NODE": str(job.cpus_per_node.get(node, 0)),
        "SLURM_TOPOLOGY_ADDR": node,
        "SLURM_TOPOLOGY_ADDR_PATTERN": "node",
        "HOSTNAME": node,
    }
    gpus = job.gpus_per_node.get(node)
    if gpus is not None and job.gres:
        ids = ",".join(str(i) for i in gpus)
        # No device cgroup here, so like Slurm without ConstrainDevices the node's own indices are used:
        # concurrent jobs see distinct ids.
        env.update({"SLURM_JOB_GPUS": ids, "SLURM_GPUS_ON_NODE": str(len(gpus)),
                    "CUDA_VISIBLE_DEVICES": ids, "GPU_DEVICE_ORDINAL": ids})
    return env


def batch_env(job: Job, base: dict[str, str], tasks_per_node: dict[str, int], controller: str,
              port: int) -> dict[str, str]:
    """The batch script's environment: the submitted one, then the job's SLURM_* variables."""
    env = dict(base)
    env.update(job_env(job, tasks_per_node, controller, port))
    node = job.batch_host
    env.update(node_env(job, node, 0))
    env.update({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_GTIDS": "0", "ENVIRONMENT": "BATCH",
                "SLURM_NODE_ALIASES": "(null)"})  # (no cloud nodes: slurmd says "(null)")
    return env


def step_env(job_vars: dict[str, str], step_id: int, nodes: str, num_nodes: int, num_tasks: int,
             tasks_per_node: str) -> dict[str, str]:
    """What srun adds for every task of a step (before per-task ids)."""
    env = dict(job_vars)
    env.update({
        "SLURM_STEP_ID": str(step_id),
        "SLURM_STEPID": str(step_id),
        "SLURM_STEP_NODELIST": nodes,
        "SLURM_STEP_NUM_NODES": str(num_nodes),
        "SLURM_STEP_NUM_TASKS": str(num_tasks),
        "SLURM_STEP_TASKS_PER_NODE": tasks_per_node,
        "SLURM_NTASKS": str(num_tasks),
        "SLURM_NPROCS": str(num_tasks),
    })
    return env
