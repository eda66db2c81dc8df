"""Slurm's error codes and their exact messages (``slurm_strerror``).

The controller raises these; commands print the message the way Slurm's do.
"""

from __future__ import annotations

from orchestrator.scheduler.protocol import RpcError

__all__ = ["MESSAGES", "SlurmError"]

MESSAGES: dict[str, str] = {
    "SLURM_ERROR": "Unspecified error",
    "SLURM_PROTOCOL_VERSION_ERROR": "Protocol version has changed, re-link your code",
    "SLURM_PROTOCOL_AUTHENTICATION_ERROR": "Protocol authentication error",
    "SLURM_COMMUNICATIONS_CONNECTION_ERROR": "Unable to contact slurm controller (connect failure)",
    "ESLURM_INVALID_PARTITION_NAME": "Invalid partition name specified",
    "ESLURM_DEFAULT_PARTITION_NOT_SET": "No partition specified or system default partition",
    "ESLURM_ACCESS_DENIED": "Access/permission denied",
    "ESLURM_USER_ID_MISSING": "Invalid user id",
    "ESLURM_INVALID_JOB_ID": "Invalid job id specified",
    "ESLURM_INVALID_NODE_NAME": "Invalid node name specified",
    "ESLURM_INVALID_TIME_LIMIT": "Requested time limit is invalid (missing or exceeds some limit)",
    "ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE": "Requested node configuration is not available",
    "ESLURM_REQUESTED_PART_CONFIG_UNAVAILABLE": "Requested partition configuration not available now",
    "ESLURM_TOO_MANY_REQUESTED_CPUS": "More processors requested than permitted",
    "ESLURM_INVALID_ACCOUNT": "Invalid account or account/partition combination specified",
    "ESLURM_INVALID_QOS": "Invalid qos specification",
    "ESLURM_DEPENDENCY": "Job dependency problem",
    "ESLURM_INVALID_GRES": "Invalid generic resource (gres) specification",
    "ESLURM_INVALID_ARRAY": "Invalid job array specification",
    "ESLURM_INVALID_FEATURE": "Invalid feature specification",
    "ESLURM_INVALID_NODE_COUNT": "Node count specification invalid",
    "ESLURM_INVALID_TASK_MEMORY": "Memory required by task is not available",
    "ESLURM_ALREADY_DONE": "Job/step already completing or completed",
    "ESLURM_JOB_FINISHED": "Job has already finished",
    "ESLURM_JOB_PENDING": "Job is pending execution",
    "ESLURM_JOB_NOT_PENDING": "Job is no longer pending execution",
    "ESLURM_JOB_NOT_RUNNING": "Job is not running",
    "ESLURM_DISABLED": "Requested operation is presently disabled",
    "ESLURM_BATCH_ONLY": "Only batch jobs are accepted or processed",
    "ESLURM_TRANSITION_STATE_NO_UPDATE": "Requested operation not supported on this job state",
    "ESLURM_INVALID_CLUSTER_NAME": "Invalid cluster name",
    "ESLURM_PATHNAME_TOO_LONG": "Pathname of a file, directory or other parameter too long",
    "ESLURM_ENVIRONMENT_MISSING": "Job environment missing",
    "ESLURM_INVALID_STEP_ID": "Invalid job step id specified",  # not Slurm's exact spelling in all versions
    "ESLURM_NODES_BUSY": "Requested nodes are busy",
    "ESLURM_INVALID_LICENSES": "Invalid license specification",
    "ESLURM_JOB_HELD": "Job is in held state, pending scheduler release",
    "ESLURM_WRONG_PARTITION": "Requested nodes are busy",
    "ESLURM_INVALID_BURST_BUFFER_REQUEST": "Burst Buffer request invalid",
    "ESLURM_JOB_SCRIPT_MISSING": "Batch job script is missing",
    "ESLURM_NOT_SUPPORTED": "Requested operation not supported on this system",
    "ESLURM_INVALID_ACCOUNTING_STORAGE_REQUEST": "Invalid request",
    "EINVAL": "Invalid argument",
    "SLURM_PROTOCOL_INSANE_MSG_LENGTH": "Insane message length",
    "ESLURM_QOS_THRES": "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
    "ESLURM_ACCOUNTING_POLICY": "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
    "ESLURM_INVALID_JOB_ID_TASK": "Invalid job id specified",
}


class SlurmError(RpcError):
    """An error with Slurm's code; the message defaults to Slurm's text for that code."""

    def __init__(self, code: str, message: str | None = None, err_msg: str = "") -> None:
        super().__init__(code, message or MESSAGES.get(code, "Unspecified error"), err_msg)
