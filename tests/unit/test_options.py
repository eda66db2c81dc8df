"""getopt_long emulation and the shared job-option table, checked against real Slurm 22.05 output."""

from __future__ import annotations

import pytest

from orchestrator.slurm.options import (
    NO_ARG,
    OPTIONAL,
    REQUIRED,
    JobOptions,
    OptionError,
    OptionValueError,
    export_environment,
    getopt_long,
    job_longopts,
    job_shortopts,
    longopts,
    parse_signal,
    str_to_mbytes,
    verify_node_count,
)

SB_LONG = job_longopts("sbatch")
SB_SHORT = job_shortopts("sbatch")


def sb(*args: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    return getopt_long("sbatch", list(args), SB_SHORT, SB_LONG)


def sb_error(*args: str) -> str:
    with pytest.raises(OptionError) as exc:
        sb(*args)
    return exc.value.message


# --- glibc's messages, as real sbatch 22.05 printed them --------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--foo"], "sbatch: unrecognized option '--foo'"),
    (["--foo=3"], "sbatch: unrecognized option '--foo=3'"),
    (["-Z"], "sbatch: invalid option -- 'Z'"),
    (["-X"], "sbatch: invalid option -- 'X'"),
    (["--ti=5"], "sbatch: option '--ti=5' is ambiguous; possibilities: '--time' '--time-min'"),
    (["--no"], "sbatch: option '--no' is ambiguous; possibilities: '--no-kill' '--no-requeue' '--nodefile' "
               "'--nodelist' '--nodes'"),
    (["--clust=a"], "sbatch: option '--clust=a' is ambiguous; possibilities: '--cluster-constraint' "
                    "'--cluster' '--clusters'"),
    (["--cpu=1"], "sbatch: option '--cpu=1' is ambiguous; possibilities: '--cpu-freq' '--cpus-per-gpu' "
                  "'--cpus-per-task'"),
    (["--us"], "sbatch: option '--us' is ambiguous; possibilities: '--use-min-nodes' '--usage'"),
    (["--mem"], "sbatch: option '--mem' requires an argument"),
    (["-t"], "sbatch: option requires an argument -- 't'"),
    (["--parsable=3"], "sbatch: option '--parsable' doesn't allow an argument"),
])
def test_glibc_messages(args: list[str], message: str) -> None:
    assert sb_error(*args) == message


def test_srun_table_lists_cpu_bind_in_ambiguity() -> None:
    with pytest.raises(OptionError) as exc:
        getopt_long("srun", ["--cpu=1"], job_shortopts("srun"), job_longopts("srun"))
    assert exc.value.message == ("srun: option '--cpu=1' is ambiguous; possibilities: '--cpu-bind' '--cpu-freq' "
                                 "'--cpus-per-gpu' '--cpus-per-task'")


def test_aliases_with_same_key_are_not_ambiguous() -> None:
    # --cpu_bind and --cpu-bind are one option; the prefix --cpu_ only matches cpu_bind
    opts, _ = getopt_long("srun", ["--cpu_b=none", "true"], job_shortopts("srun"), job_longopts("srun"))
    assert opts == [("cpu-bind", "none")]


def test_long_forms_and_abbreviations() -> None:
    opts, pos = sb("--time=5", "--time", "6", "--job-n", "x", "--partition=short", "script.sh", "--time=7")
    assert opts == [("t", "5"), ("t", "6"), ("J", "x"), ("p", "short")]
    # sbatch stops at the script: later words are the script's arguments
    assert pos == ["script.sh", "--time=7"]


def test_exact_match_wins_over_prefix() -> None:
    opts, _ = sb("--mem=4G", "--time=1")
    assert opts == [("mem", "4G"), ("t", "1")]


def test_short_clusters_and_separate_values() -> None:
    opts, pos = sb("-N2", "-n", "4", "-vvH", "-c8", "-J", "-dash-name")
    assert opts == [("N", "2"), ("n", "4"), ("v", None), ("v", None), ("H", None), ("c", "8"),
                    ("J", "-dash-name")]
    assert pos == []


def test_optional_arguments_only_attached() -> None:
    opts, pos = sb("--exclusive", "--nice=5", "-k", "script")
    assert opts == [("exclusive", None), ("nice", "5"), ("k", None)]
    assert pos == ["script"]


def test_permutation_for_non_sbatch_commands() -> None:
    table = longopts([("signal", REQUIRED, "s"), ("verbose", NO_ARG, "v"), ("jobs", OPTIONAL, "j")])
    opts, pos = getopt_long("scancel", ["12", "--signal", "USR2", "13", "-v", "--", "-5"], "s:vj::", table)
    assert opts == [("s", "USR2"), ("v", None)]
    assert pos == ["12", "13", "-5"]


def test_posixly_correct_stops_at_first_positional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSIXLY_CORRECT", "1")
    table = longopts([("verbose", NO_ARG, "v")])
    assert getopt_long("x", ["a", "-v"], "v", table) == ([], ["a", "-v"])


def test_error_keeps_options_read_before_it() -> None:
    with pytest.raises(OptionError) as exc:
        sb("--help", "--foo")
    assert exc.value.parsed == [("h", None)]


def test_shortopts_string_matches_sbatch() -> None:
    assert SB_SHORT.startswith("+")
    for letter in "aAbcCdDeGhHiJkLmMnNoOpqQstvVwWx":
        assert letter in SB_SHORT
    assert "X" not in SB_SHORT and "E" not in SB_SHORT  # srun-only letters


# --- values -------------------------------------------------------------------------------------------


def apply(*pairs: tuple[str, str | None], command: str = "sbatch") -> JobOptions:
    o = JobOptions(command)
    for key, value in pairs:
        o.apply(key, value)
    return o


@pytest.mark.parametrize("text,minutes", [("5", 5), ("0", -1), ("1:30", 2), ("2:00:00", 120),
                                          ("1-0", 1440), ("1-2:3", 1563), ("UNLIMITED", -1)])
def test_time_values(text: str, minutes: int) -> None:
    assert apply(("t", text)).time_limit == minutes


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "5m", ""])
def test_bad_time_has_slurm_text(text: str) -> None:
    with pytest.raises(OptionValueError) as exc:
        apply(("t", text))
    assert exc.value.message == "Invalid --time specification"
    assert exc.value.exit_code == 255


def test_numbers_and_node_counts() -> None:
    o = apply(("N", "2-4"), ("n", "8"), ("c", "2"), ("ntasks-per-node", "4"))
    assert (o.min_nodes, o.max_nodes, o.ntasks, o.cpus_per_task, o.ntasks_per_node) == (2, 4, 8, 2, 4)
    for key, text, msg in (("n", "0", 'Invalid numeric value "0" for --ntasks.'),
                           ("c", "abc", 'Invalid numeric value "abc" for --cpus-per-task.'),
                           ("ntasks-per-node", "0", 'Invalid numeric value "0" for --ntasks-per-node.')):
        with pytest.raises(OptionValueError) as exc:
            apply((key, text))
        assert (exc.value.message, exc.value.exit_code) == (msg, 1)
    with pytest.raises(OptionValueError) as exc:
        verify_node_count("abc")
    assert exc.value.message == '"abc" is not a valid node count'
    with pytest.raises(OptionValueError) as exc:
        verify_node_count("2-1")
    assert exc.value.message == "Maximum node count 1 is less than minimum node count 2"
    assert verify_node_count("0") == (0, 0)  # accepted; the controller refuses it


def test_memory() -> None:
    assert str_to_mbytes("4G") == 4096
    assert str_to_mbytes("1500") == 1500
    assert str_to_mbytes("1025K") == 2
    assert str_to_mbytes("2GB") == 2048
    assert str_to_mbytes("4X") is None
    with pytest.raises(OptionValueError) as exc:
        apply(("mem", "4X"))
    assert exc.value.message == "Invalid --mem specification"


def test_mem_options_are_mutually_exclusive() -> None:
    o = apply(("mem", "1G"), ("mem-per-cpu", "1G"))
    with pytest.raises(OptionValueError) as exc:
        o.validate()
    assert exc.value.message == "--mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive."
    assert exc.value.fatal and exc.value.exit_code == 1


def test_env_values_yield_to_command_line() -> None:
    o = JobOptions()
    o.apply_env({"SBATCH_MEM_PER_CPU": "2000"}, {"SBATCH_MEM_PER_CPU": "mem-per-cpu"})
    o.apply("mem", "4G")
    o.validate()
    assert (o.mem_per_node, o.mem_per_cpu) == (4096, 0)


def test_env_flags_follow_slurm_rules() -> None:
    o = JobOptions()
    o.apply_env({"SBATCH_REQUEUE": "no"}, {"SBATCH_REQUEUE": "requeue"})
    assert o.requeue is None
    o.apply_env({"SBATCH_REQUEUE": "yes"}, {"SBATCH_REQUEUE": "requeue"})
    assert o.requeue is True


@pytest.mark.parametrize("text,expected", [("USR2@90", (12, 90, "")), ("B:USR2@30", (12, 30, "B")),
                                           ("10", (10, 60, "")), ("SIGTERM", (15, 60, "")),
                                           ("RB:USR1@5", (10, 5, "RB"))])
def test_signal(text: str, expected: tuple[int, int, str]) -> None:
    assert parse_signal(text) == expected


@pytest.mark.parametrize("text", ["FOO", "USR2@x", "0", "B:USR2@-1"])
def test_bad_signal(text: str) -> None:
    with pytest.raises(ValueError):
        parse_signal(text)


@pytest.mark.parametrize("key,text,message", [
    ("open-mode", "foo", "Invalid --open-mode specification"),
    ("mail-type", "FOO", "Invalid --mail-type specification"),
    ("exclusive", "foo", "Invalid --exclusive specification"),
    ("b", "foo", "Invalid --begin specification"),
    ("signal", "FOO", "Invalid --signal specification"),
])
def test_value_errors(key: str, text: str, message: str) -> None:
    with pytest.raises(OptionValueError) as exc:
        apply((key, text))
    assert exc.value.message == message


def test_a_refused_begin_time_is_explained_first(capsys: pytest.CaptureFixture[str]) -> None:
    # parse_time() prints where it stopped; sbatch then names the option
    with pytest.raises(OptionValueError) as exc:
        apply(("b", "now+1h"))
    assert (capsys.readouterr().err, exc.value.message) == (
        "Invalid time specification (pos=4): now+1h\n", "Invalid --begin specification")
    with pytest.raises(OptionValueError):
        apply(("deadline", ""))
    assert capsys.readouterr().err == ""


def test_job_dict_uses_job_field_names() -> None:
    o = apply(("J", "x"), ("p", "short"), ("t", "10"), ("N", "2"), ("mem-per-cpu", "1G"), ("o", "out-%j"),
              ("no-requeue", None), ("open-mode", "append"), ("H", None), ("a", "1-3%1"), ("d", "afterok:5"))
    job = o.job(cwd="/home/alice", submit_host="login", command_path="/home/alice/s.sh")
    assert job["name"] == "x" and job["partition"] == "short" and job["time_limit"] == 10
    assert job["num_nodes"] == 2 and job["nodes_explicit"] is True and job["mem_per_cpu"] == 1024
    assert job["std_out"] == "out-%j" and job["requeue"] is False and job["open_mode"] == "append"
    assert job["hold"] is True and job["array"] == "1-3%1" and job["dependency"] == "afterok:5"
    assert job["work_dir"] == "/home/alice" and job["batch"] is True and job["export"] == "ALL"
    assert job["time_limit"] is not None
    # unset things keep the controller's defaults
    assert apply().job(cwd="/", submit_host="h", command_path="")["time_limit"] is None


def test_export() -> None:
    env = {"A": "1", "B": "2", "SLURM_X": "s"}
    assert export_environment("ALL", env) == env
    assert export_environment("NONE", env) == {"SLURM_X": "s"}
    assert export_environment("A,C=3", env) == {"A": "1", "C": "3", "SLURM_X": "s"}
    assert export_environment("ALL,A=9", env) == {"A": "1", "B": "2", "SLURM_X": "s"}
    assert export_environment("C=1,2,B", env) == {"C": "1,2", "B": "2", "SLURM_X": "s"}


@pytest.mark.parametrize(("key", "value", "message", "code"), [
    ("gpus-per-task", "x", "Invalid generic resource (gres) specification", 1),
    ("m", "bogus", "Invalid --distribution specification", 255),
    ("m", "block:bogus", "Invalid --distribution specification", 255),
    ("m", "plane=0", "Invalid --distribution specification", 255),
    ("kill-on-invalid-dep", "maybe", "Invalid --kill-on-invalid-dep specification", 255),
])
def test_option_values_refused_with_slurms_words(key: str, value: str, message: str, code: int) -> None:
    with pytest.raises(OptionValueError) as exc:
        apply((key, value))
    assert (exc.value.message, exc.value.exit_code) == (message, code)


@pytest.mark.parametrize("value", ["block", "cyclic", "arbitrary", "plane=2", "cyclic:block", "block:cyclic:fcyclic",
                                   "*:block", "block,Pack", "cyclic,nopack"])
def test_distributions_slurm_accepts(value: str) -> None:
    assert apply(("m", value)).distribution == value
