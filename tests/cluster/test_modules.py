"""Issue 6 on the running service: real Lmod and real software, used over ssh as a user.

Needs `make up` (the default config's clusters). Each test talks to arc-login over ssh the
way a user does; commands run non-interactively, so they also prove that `module` reaches
ssh commands and (through the job's environment) batch scripts and srun steps.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from clusterlib import ClusterUnderTest, Shell, shell

pytestmark = pytest.mark.cluster

USER = "alice"
JOB_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def login(cluster: ClusterUnderTest) -> Shell:
    """ssh as alice to the first cluster's login node (the session fixture has brought it up)."""
    return shell(USER, cluster.config.clusters[0].name)


@pytest.fixture
def workdir(login: Shell) -> Iterator[str]:
    """A fresh directory in the user's home, removed afterwards."""
    path = f"modtest-{uuid.uuid4().hex[:8]}"
    login.out(f"mkdir -p ~/{path}")
    yield path
    login.run(f"rm -rf ~/{path}")


def has_module(login: Shell, name: str) -> bool:
    return login.run(f"module is-avail {shlex.quote(name)}").returncode == 0


def submit(login: Shell, workdir: str, script: str, name: str = "job.sh", pre: str = "") -> str:
    """Write and sbatch a script in workdir (after ``pre``); wait for it to end; return its output file."""
    login.out(f"cd ~/{workdir} && cat > {name} <<'EOF'\n{script}EOF\nchmod +x {name}")
    out = login.out(f"cd ~/{workdir} && {pre}\nsbatch {name}")
    m = re.search(r"Submitted batch job (\d+)", out)
    assert m, out
    job = m.group(1)
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        res = login.run(f"squeue -h -j {job} -o %T 2>/dev/null")
        if res.returncode != 0 or not res.stdout.strip():
            break
        time.sleep(2)
    else:
        login.run(f"scancel {job}")
        pytest.fail(f"job {job} did not finish in {JOB_TIMEOUT:.0f} s")
    time.sleep(1)
    return login.out(f"cat ~/{workdir}/slurm-{job}.out")


# --------------------------------------------------------------------------- interactive use


def test_programs_absent_until_their_module_is_loaded(login: Shell) -> None:
    res = login.run("type mpirun; type mpicc; type R; type python")
    assert res.returncode != 0
    for cmd in ("mpirun", "mpicc", "R", "python"):
        assert f"{cmd}: not found" in res.stderr
    out = login.out("module load OpenMPI/4.1.4-GCC-12.2.0 && type -p mpirun mpicc && mpirun --version")
    assert "/apps/system/easybuild/software/OpenMPI/4.1.4-GCC-12.2.0/bin/mpirun" in out
    assert "Open MPI) 4.1.4" in out
    # the daemons' interpreter stays where it is
    assert login.out("command -v python3").strip() == "/usr/bin/python3"


def test_matlab_is_octave_after_load(login: Shell) -> None:
    res = login.run("matlab -batch 1")
    assert res.returncode == 127 and "matlab: command not found" in res.stderr
    if not has_module(login, "MATLAB/R2022a"):
        pytest.skip("site.optional_modules has no octave in this config (test_optional_octave_layer_... covers it)")
    out = login.out('module load MATLAB/R2022a && matlab -nojvm -nosplash -batch "disp(6*7)"')
    assert "42" in out
    assert "runs GNU Octave" in " ".join(out.split())  # the load message is honest
    res = login.run('module load MATLAB/R2022a 2>/dev/null && matlab -batch "error(\'boom\')"')
    assert res.returncode == 1 and "boom" in res.stderr


def test_optional_octave_layer_gives_matlab_and_octave(cluster: ClusterUnderTest) -> None:
    """``site.optional_modules: [octave]`` builds the node image with Octave and the MATLAB stand-in.

    The default config leaves the layer off (0.43 GB), so the cluster above has no MATLAB
    module; this builds the optional image the way `make up` would with that config and runs
    the stand-in in a throwaway container.
    """
    from orchestrator.cluster.images import ImageBuilder
    from orchestrator.cluster.provider import DockerProvider

    builder = ImageBuilder(DockerProvider().client, cluster.paths, lambda line: None, ("octave",))
    base, _ = builder.ensure_base()
    tag, _ = builder.ensure_node(base)
    script = ('type matlab >/dev/null 2>&1 && exit 90; module load MATLAB/R2022a && '
              'matlab -nojvm -nosplash -batch "disp(6*7)" && module list 2>&1 && '
              'octave-cli --eval "disp(version())"')
    res = subprocess.run(["docker", "run", "--rm", "--entrypoint", "bash", tag, "-lc", script],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "42" in res.stdout.split() and "7.3.0" in res.stdout.split()
    assert "Octave/7.3.0" in res.stdout and "MATLAB/R2022a" in res.stdout
    assert "runs GNU" in res.stderr  # the load message says it is Octave


def test_spider_is_case_insensitive(login: Shell) -> None:
    out = login.out("module spider openmpi")
    assert "OpenMPI/4.1.4-GCC-12.2.0" in out
    res = login.run("module load openmpi")  # load is case-sensitive: Lmod's own error
    assert res.returncode != 0
    assert 'The following module(s) are unknown: "openmpi"' in " ".join(res.stderr.split())


def test_avail_shows_the_tree_with_defaults(login: Shell) -> None:
    out = " ".join(login.out("module avail").split())
    assert "/apps/system/easybuild/modules/all" in out
    for name in ("GCC/12.2.0", "OpenMPI/4.1.4-GCC-12.2.0", "foss/2022b", "Python/3.11.2-GCCcore-12.2.0",
                 "R/4.2.2-foss-2022b", "mpitest/1.0", "testapp/1.0"):
        assert name in out
    assert "testapp/1.1 (D)" in out
    assert "D: Default Module" in out


def test_toolchain_loads_its_parts_and_swap_by_name(login: Shell) -> None:
    out = login.out("module load foss/2022b && module -t list 2>&1 && echo EB=$EBROOTSCALAPACK")
    for name in ("GCC/12.2.0", "OpenMPI/4.1.4-GCC-12.2.0", "OpenBLAS/0.3.21-GCC-12.2.0", "FFTW/3.3.10-GCC-12.2.0",
                 "ScaLAPACK/2.2.1-gompi-2022b", "foss/2022b"):
        assert name in out.split()
    assert "EB=/apps/system/easybuild/software/ScaLAPACK/2.2.1-gompi-2022b" in out
    out = login.out("module load testapp && module load testapp/1.0 && testapp --version")
    assert "testapp 1.0" in out
    assert "reloaded with a version change" in " ".join(out.split())


def test_save_and_restore_round_trip(login: Shell) -> None:
    name = f"t{uuid.uuid4().hex[:6]}"
    out = login.out(f"module load Python/3.11.2-GCCcore-12.2.0 testapp/1.0 && module save {name} && module purge "
                   f"&& module restore {name} && module -t list 2>&1; rm -f ~/.lmod.d/{name} ~/.config/lmod/{name}")
    assert "Python/3.11.2-GCCcore-12.2.0" in out.split() and "testapp/1.0" in out.split()


def test_show_and_keyword_are_lmods(login: Shell) -> None:
    out = login.out("module show R/4.2.2-foss-2022b")
    assert 'setenv("EBROOTR","/apps/system/easybuild/software/R/4.2.2-foss-2022b")' in out
    assert "Description" in out
    out = login.out("module keyword venv")
    assert "Python/3.11.2-GCCcore-12.2.0" in out


def test_compile_and_run_mpi_program_with_foss(login: Shell, workdir: str) -> None:
    src = ("#include <mpi.h>\n#include <stdio.h>\nint main(int c, char **v) { int r, s; MPI_Init(&c, &v);\n"
           "MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &s);\n"
           'printf("rank %d of %d\\n", r, s); MPI_Finalize(); return 0; }\n')
    out = login.out(f"cd ~/{workdir} && cat > hello.c <<'EOF'\n{src}EOF\n"
                   "module load foss && mpicc -O2 -o hello hello.c && mpirun -np 2 ./hello")
    assert "rank 0 of 2" in out and "rank 1 of 2" in out


def test_python_venv_on_data(login: Shell) -> None:
    env = f"$DATA/venv-{uuid.uuid4().hex[:6]}"
    out = login.out(f"module load Python/3.11.2-GCCcore-12.2.0 && python -m venv {env} && "
                   f"source {env}/bin/activate && python -c 'import sys; print(sys.prefix)' && pip --version; "
                   f"rc=$?; rm -rf {env}; exit $rc")
    assert "/venv-" in out and "pip 23" in out


def test_r_user_library(login: Shell, workdir: str) -> None:
    pkg = f"~/{workdir}/rpkg/minihpcdemo"
    out = login.out(
        f"mkdir -p {pkg}/R ~/local/rlibs && cd ~/{workdir}/rpkg && "
        "printf 'Package: minihpcdemo\\nVersion: 0.1\\nTitle: Demo\\nDescription: Demo.\\nLicense: MIT\\n"
        "Author: a\\nMaintainer: a <a@example.org>\\n' > minihpcdemo/DESCRIPTION && "
        "echo 'export(hello)' > minihpcdemo/NAMESPACE && "
        "echo 'hello <- function() cat(\"hello from rlibs\\n\")' > minihpcdemo/R/hello.R && "
        "module load R/4.2.2-foss-2022b && export R_LIBS=~/local/rlibs && "
        "R CMD INSTALL -l ~/local/rlibs minihpcdemo >/dev/null 2>&1 && "
        "Rscript --no-restore --no-save -e 'library(minihpcdemo); hello()'; rc=$?; "
        "rm -rf ~/local/rlibs/minihpcdemo; exit $rc")
    assert "hello from rlibs" in out


# --------------------------------------------------------------------------- jobs


def test_batch_job_runs_mpihello_across_two_nodes(login: Shell, workdir: str, cluster: ClusterUnderTest) -> None:
    spec = cluster.config.clusters[0]
    devel = [p for p in spec.partitions if p.name == "devel"]
    if len(spec.nodes) < 2 or not devel:
        pytest.skip("the config under test has no two-node devel partition")
    script = ("#! /bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n#SBATCH --time=00:10:00\n"
              "#SBATCH --partition=devel\nmodule load mpitest\nmpirun mpihello\nmpirun mpisize\n")
    out = submit(login, workdir, script)
    lines = re.findall(r"Hello world from processor (\S+), rank (\d+) out of (\d+) processors", out)
    assert len(lines) == 8, out
    assert {int(r) for _, r, _ in lines} == set(range(8))
    assert {n for _, _, n in lines} == {"8"}
    hosts = {int(r): h for h, r, _ in lines}
    assert len(set(hosts.values())) == 2
    assert {hosts[r] for r in range(4)} != {hosts[r] for r in range(4, 8)}
    # mpisize: one line per rank in rank order, four local ranks per node, then the summary
    sizes = re.findall(r"^rank (\d+) of 8 on (\S+) \(local rank (\d+)\): (\d+) CPUs? allowed", out, re.M)
    assert [int(r) for r, _, _, _ in sizes] == list(range(8)), out
    assert sorted(int(local) for _, _, local, _ in sizes) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert "mpisize: 8 tasks on 2 nodes" in out


def test_job_inherits_submit_time_modules(login: Shell, workdir: str) -> None:
    script = "#!/bin/bash\nmodule -t list 2>&1\ntestapp --version\n"
    out = submit(login, workdir, script, pre="module load testapp/1.0")
    assert "testapp/1.0" in out.split()
    assert "testapp 1.0" in out


def test_purge_and_load_inside_a_job_and_an_srun_step(login: Shell, workdir: str) -> None:
    script = ("#!/bin/bash\n#SBATCH --ntasks=1\nmodule purge\nmodule load testapp/1.1\ntestapp --version\n"
              "srun bash -c 'module purge; module load testapp/1.0; testapp --version'\n")
    out = submit(login, workdir, script, pre="module load foss/2022b")
    assert "testapp 1.1" in out
    assert "testapp 1.0" in out
    assert "command not found" not in out
