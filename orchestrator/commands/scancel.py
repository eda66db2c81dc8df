"""``scancel``: cancel or signal jobs by id or by filters, with Slurm's messages and exit codes.

Like Slurm, ids alone go straight to the controller (an unknown or finished job
is silent unless ``-v``); with filters the queue is read and matched here, so
another user's job in the selection is refused with "Access/permission denied"
exactly as Slurm refuses it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from orchestrator.commands._common import Exit, err, error, getopt, run
from orchestrator.lazylog import get_logger
from orchestrator.slurm.options import NO_ARG, REQUIRED, longopts, strtol

log = get_logger(__name__)

PROG = "scancel"
SHORTOPTS = "A:bfHiM:n:p:Qq:R:s:t:u:vVw:"
LONGOPTS = longopts([
    ("account", REQUIRED, "A"), ("batch", NO_ARG, "b"), ("ctld", NO_ARG, "ctld"), ("full", NO_ARG, "f"),
    ("help", NO_ARG, "help"), ("hurry", NO_ARG, "H"), ("interactive", NO_ARG, "i"),
    ("cluster", REQUIRED, "M"), ("clusters", REQUIRED, "M"), ("jobname", REQUIRED, "n"),
    ("me", NO_ARG, "me"), ("name", REQUIRED, "n"), ("nodelist", REQUIRED, "w"),
    ("partition", REQUIRED, "p"), ("qos", REQUIRED, "q"), ("quiet", NO_ARG, "Q"),
    ("reservation", REQUIRED, "R"), ("sibling", REQUIRED, "sibling"), ("signal", REQUIRED, "s"),
    ("state", REQUIRED, "t"), ("usage", NO_ARG, "usage"), ("user", REQUIRED, "u"),
    ("verbose", NO_ARG, "v"), ("version", NO_ARG, "V"), ("wckey", REQUIRED, "wckey"),
])

_STATE_NAMES = {"PENDING": "PENDING", "PD": "PENDING", "RUNNING": "RUNNING", "R": "RUNNING",
                "SUSPENDED": "SUSPENDED", "S": "SUSPENDED"}
_ALL_STATES = {"PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
               "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "COMPLETING", "CONFIGURING", "RESIZING",
               "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "REVOKED", "SIGNALING", "SPECIAL_EXIT",
               "STAGE_OUT", "STOPPED", "PD", "R", "S", "CG", "CD", "CA", "F", "TO", "NF", "PR", "BF", "DL",
               "OOM", "CANCELED"}


class Opts:
    def __init__(self) -> None:
        self.account: str | None = None
        self.batch = False
        self.full = False
        self.interactive = False
        self.clusters: list[str] | None = None
        self.name: str | None = None
        self.partition: str | None = None
        self.qos: str | None = None
        self.reservation: str | None = None
        self.signal: int | None = None
        self.state: str | None = None
        self.user: str | None = None
        self.uid: int | None = None
        self.verbose = 0
        self.nodelist: str | None = None
        self.wckey: str | None = None
        self.ids: list[tuple[int, str, str | None]] = []  # (job id, id text, step or None)

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.account, self.name, self.nodelist, self.partition, self.qos,
                                           self.reservation, self.state, self.user, self.wckey))


def main(argv: list[str] | None = None) -> int:
    return run(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def _parse_ids(args: list[str]) -> list[tuple[int, str, str | None]]:
    """``12``, ``12_3``, ``12_[1-3]``, ``12_*``, ``12.0``, comma-separated: Slurm's rules and errors."""
    out: list[tuple[int, str, str | None]] = []
    queue = list(args)
    while queue:
        text = queue.pop(0)
        job_id, rest = strtol(text)
        if job_id <= 0:
            error(PROG, f"Invalid job id {text}")
            raise Exit(1)
        if rest.startswith("_["):
            end = rest.find("]")
            if end < 0 or end != len(rest) - 1:
                error(PROG, f"Invalid job id {text}")
                raise Exit(1)
            from orchestrator.slurm.hostlist import parse_range

            for item in rest[2:-1].split(","):
                if parse_range(item) is None:
                    error(PROG, f"_parse_single_range: Invalid range: `{item}'")  # hostlist's words
                    error(PROG, f"Invalid job id {text}")
                    raise Exit(1)
            out.append((job_id, f"{job_id}{rest}", None))
            continue
        label = str(job_id)
        if rest.startswith("_*"):
            label = f"{job_id}_*"
            rest = rest[2:]
        elif rest.startswith("_"):
            task, rest = strtol(rest[1:])
            if task < 0:
                error(PROG, f"Invalid job id {text}")
                raise Exit(1)
            label = f"{job_id}_{task}"
        step: str | None = None
        if rest.startswith("."):
            num, rest = strtol(rest[1:])
            if num < 0:
                error(PROG, f"Invalid job id {text}")
                raise Exit(1)
            step = str(num)
        out.append((job_id, label, step))
        if rest.startswith(","):
            if rest[1:]:
                queue.insert(0, rest[1:])
        elif rest:
            error(PROG, f"Invalid job id {text}")
            raise Exit(1)
    return out


def parse_args(argv: list[str]) -> Opts:
    from orchestrator.commands import _common

    opts, positionals = getopt(PROG, argv, SHORTOPTS, LONGOPTS)
    o = Opts()
    for key, value in opts:
        v = value or ""
        if key == "A":
            o.account = v.lower()
        elif key == "b":
            o.batch = True
        elif key == "f":
            o.full = True
        elif key == "i":
            o.interactive = True
        elif key == "M":
            o.clusters = _common.resolve_clusters(PROG, v)
        elif key == "me":
            o.user = str(os.getuid())
        elif key == "n":
            o.name = v
        elif key == "p":
            o.partition = v
        elif key == "Q":
            o.verbose = -1
        elif key == "q":
            o.qos = v.lower()
        elif key == "R":
            o.reservation = v
        elif key == "s":
            from orchestrator.slurm.options import signal_number

            o.signal = signal_number(v)
            if not o.signal:
                err(f"Unknown job signal: {v}\n")
                raise Exit(1)
        elif key == "t":
            state = _STATE_NAMES.get(v.upper())
            if state is None and v.upper() in _ALL_STATES:
                state = v.upper()
            if state is None:
                err(f"Invalid job state specified: {v}\n")
                err("Valid job states are PENDING, RUNNING, and SUSPENDED\n")
                raise Exit(1)
            o.state = state
        elif key == "u":
            o.user = v
        elif key == "v":
            o.verbose += 1
        elif key == "V":
            _common.print_version()
            raise Exit(0)
        elif key == "w":
            o.nodelist = v
        elif key == "wckey":
            o.wckey = v
        elif key == "help":
            _common.print_help(PROG)
            raise Exit(0)
        elif key == "usage":
            _common.print_help(PROG, "usage")
            raise Exit(0)
    if positionals:
        o.ids = _parse_ids(positionals)
    if o.user is not None:
        o.uid = _common.user_id(o.user)
        if o.uid is None:
            error(PROG, f"Invalid user name: {o.user}")
            raise Exit(1)
    if not o.ids and not o.filtered:
        error(PROG, "No job identification provided")
        raise Exit(1)
    return o


def _main(argv: list[str]) -> int:
    o = parse_args(argv)
    if not o.clusters:
        return _proc_cluster(o, None)
    rc = 0
    for cluster in o.clusters:
        rc = max(rc, _proc_cluster(o, cluster))
    return rc


def _proc_cluster(o: Opts, cluster: str | None) -> int:
    from orchestrator.commands import _common

    if not o.filtered and not o.interactive and not any(step for _j, _l, step in o.ids):
        return _signal(o, cluster, [label for _j, label, _s in o.ids]) % 256
    RpcError = _common.rpc_error_type()
    fields = ["job_id", "array_job_id", "array_task_id", "array_task_str", "array_max_tasks", "state", "account",
              "name", "partition", "qos", "uid", "nodes"]
    try:
        reply = _common.make_client(cluster).call("jobs", {"fields": fields})
    except RpcError as exc:
        err(f"slurm_load_jobs error: {exc.message}\n")  # type: ignore[attr-defined]
        raise Exit(1) from None
    names = reply.get("fields") or fields
    jobs = [dict(zip(names, row, strict=False)) for row in reply.get("rows") or []]
    finished = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                "DEADLINE", "OUT_OF_MEMORY"}
    jobs = [j for j in jobs if j.get("state") not in finished]
    rc = 0
    targets: list[dict[str, Any]] = jobs
    if o.ids:
        targets = []
        for job_id, label, step in o.ids:
            found = [j for j in jobs if _matches(j, job_id, label, step)]
            if not found:
                rc = 1
                if o.verbose >= 0:
                    what = f"job step id {label}.{step}" if step else f"job id {label}"
                    error(PROG, f"Kill job error on {what}: Invalid job id specified")
                continue
            for j in found:
                if j not in targets:
                    targets.append(j)
    if o.filtered:
        targets = [j for j in targets if _keep(o, j)]
        if not targets and o.verbose > 0:
            parts = []
            for label, value in (("account", o.account), ("job_name", o.name), ("nodelist", o.nodelist),
                                 ("partition", o.partition), ("qos", o.qos), ("reservation", o.reservation),
                                 ("state", o.state), ("user_name", o.user), ("wckey", o.wckey)):
                if value is not None:
                    parts.append(f"{label}={value} ")
            error(PROG, f"No active jobs match ALL job filters, including: {''.join(parts)}")
    # pending jobs first, so none starts while the running ones are being cancelled
    ordered = [j for j in targets if j.get("state") == "PENDING"] + \
              [j for j in targets if j.get("state") != "PENDING"]
    labels: list[str] = []
    for j in ordered:
        step = _step_for(o, j)
        label = _label(j) + (f".{step}" if step else "")
        if o.interactive and not _confirm(j, step):
            continue
        labels.append(label)
    if labels:
        rc = max(rc, _signal(o, cluster, labels))
    return rc % 256


def _step_for(o: Opts, job: dict[str, Any]) -> str | None:
    for job_id, label, step in o.ids:
        if step and _matches(job, job_id, label, step):
            return step
    return None


def _matches(job: dict[str, Any], job_id: int, label: str, step: str | None) -> bool:
    if step and job.get("state") == "PENDING":
        return False
    ajid = job.get("array_job_id") or 0
    if "_" not in label:
        return job_id == job["job_id"] or (job_id == ajid and not step)
    task_text = label.split("_", 1)[1]
    if task_text == "*":
        return job_id == ajid
    if job_id != ajid:
        return False
    if task_text.startswith("["):
        return True
    task = int(task_text)
    if job.get("array_task_id") == task:
        return True
    tstr = job.get("array_task_str") or ""
    if tstr:
        from orchestrator.slurm.arrays import parse_ranges

        return task in parse_ranges(tstr.split("%")[0])
    return False


def _keep(o: Opts, j: dict[str, Any]) -> bool:
    if j.get("state") not in ("PENDING", "RUNNING", "SUSPENDED"):
        return False
    if o.account is not None and j.get("account") != o.account:
        return False
    if o.name is not None and j.get("name") != o.name:
        return False
    if o.partition is not None and j.get("partition") != o.partition:
        return False
    if o.qos is not None and j.get("qos") != o.qos:
        return False
    if o.reservation is not None:
        return False
    if o.state is not None and j.get("state") != o.state:
        return False
    if o.uid is not None and j.get("uid") != o.uid:
        return False
    if o.nodelist is not None:
        from orchestrator.slurm.hostlist import HostlistError, expand

        try:
            want = set(expand(o.nodelist))
        except HostlistError:
            return False
        if not j.get("nodes") or not want.intersection(expand(j["nodes"])):
            return False
    return o.wckey is None


def _label(j: dict[str, Any]) -> str:
    if j.get("array_task_str"):
        return f"{j.get('array_job_id') or j['job_id']}_[{j['array_task_str'].split('%')[0]}]"
    if j.get("array_task_id") is not None:
        return f"{j.get('array_job_id') or j['job_id']}_{j['array_task_id']}"
    return str(j["job_id"])


def _confirm(j: dict[str, Any], step: str | None) -> bool:
    what = f"step_id={j['job_id']}.{step}" if step else f"job_id={_label(j)}"
    sys.stdout.write(f"Cancel {what} name={j.get('name')} partition={j.get('partition')} [y/n]? ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer[:1] in ("y", "Y")


def _signal(o: Opts, cluster: str | None, labels: list[str]) -> int:
    """Send one request for ``labels``; print Slurm's lines; return the highest errno."""
    from orchestrator.commands import _common

    kind = "full " if o.full else ("batch " if o.batch else "")
    for label in labels:
        if o.verbose > 0:
            if o.signal is None:
                err(f"{PROG}: Terminating {kind}job {label}\n")
            else:
                err(f"{PROG}: Signal {o.signal} to {kind}job {label}\n")
    wire = [label[:-2] if label.endswith("_*") else label for label in labels]
    body = {"job_ids": wire, "signal": o.signal, "batch_only": o.batch, "full": o.full}
    RpcError = _common.rpc_error_type()
    try:
        reply = _common.make_client(cluster).call("signal", body)
        results = reply.get("results") or []
    except RpcError as exc:
        results = [{"job_id": w, "error": exc.code, "message": exc.message}  # type: ignore[attr-defined]
                   for w in wire]
    display = {w: label for label, w in zip(labels, wire, strict=True)}
    rc = 0
    for res in results:
        code = res.get("error")
        if not code:
            continue
        label = display.get(str(res.get("job_id")), str(res.get("job_id")))
        quiet_code = code in ("ESLURM_ALREADY_DONE", "ESLURM_INVALID_JOB_ID")
        if o.verbose > 0 or (not quiet_code and o.verbose >= 0):
            what = "job step id" if "." in label else "job id"
            error(PROG, f"Kill job error on {what} {label}: {res.get('message')}")
        if quiet_code and o.signal in (None, 9):
            continue
        rc = max(rc, _common.errno_of(str(code)))
    return rc
