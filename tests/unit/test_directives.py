"""#SBATCH directives: where they are read, how arguments split, and sbatch's fatal errors."""

from __future__ import annotations

import pytest

from orchestrator.slurm.directives import DirectiveError, parse_directives


def test_directives_until_first_command() -> None:
    script = ("#!/bin/bash\n#SBATCH -J \"my job\" --time=5 # a comment\n\n# plain comment\n"
              "   # indented comment\n#SBATCH -p short\necho hi\n#SBATCH -N 3\n")
    assert parse_directives(script).args == ["-J", "my job", "--time=5", "-p", "short"]


def test_forms() -> None:
    script = "#!/bin/sh\n#SBATCH --mem 4G\n#SBATCH -c8\n#SBATCH --exclusive\n#SBATCH --comment='a b'\n"
    assert parse_directives(script).args == ["--mem", "4G", "-c8", "--exclusive", "--comment=a b"]


def test_magic_word_must_start_the_line() -> None:
    assert parse_directives("#!/bin/sh\n  #SBATCH -N2\n#SBATCH -n1\n").args == ["-n1"]


def test_hash_inside_an_argument_ends_the_line() -> None:
    assert parse_directives("#!/bin/sh\n#SBATCH -J a#b -t 5\n").args == ["-J", "a"]


def test_escaped_quote() -> None:
    assert parse_directives('#!/bin/sh\n#SBATCH --comment=say\\"hi\\"\n').args == ['--comment=say"hi"']


def test_old_magic_word_warns_once() -> None:
    found = parse_directives("#!/bin/sh\n#SLURM -J old\n#SLURM -t 1\n")
    assert found.args == ["-J", "old", "-t", "1"]
    assert found.warnings == ["Change from #SLURM to #SBATCH in your script and verify the options are valid in sbatch"]


def test_unmatched_quote_is_fatal_with_slurms_text() -> None:
    with pytest.raises(DirectiveError) as exc:
        parse_directives('#!/bin/sh\n#SBATCH -J "x\n')
    assert exc.value.message == 'stdin: line 2: Unmatched `"` in [ "x]'


def test_leading_colon_is_fatal() -> None:
    with pytest.raises(DirectiveError) as exc:
        parse_directives("#!/bin/sh\n#SBATCH : -J x\n", "job.sh")
    assert exc.value.message == "job.sh: line 2: Unexpected `:` in [: -J x]"


def test_empty_argument_ends_the_line() -> None:
    assert parse_directives('#!/bin/sh\n#SBATCH -J "" -t 5\n').args == ["-J"]
