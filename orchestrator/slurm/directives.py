"""``#SBATCH`` directives in batch scripts, read exactly as sbatch reads them.

Scripts from every workflow tool put their options here, so the rules are
sbatch's own: directives are read from the top until the first line that is
neither blank nor a comment; ``#SBATCH`` must start the line; arguments split on
blanks with single or double quotes grouping and backslash escaping; an
unquoted ``#`` ends the line's arguments. ``#SLURM`` lines are honoured with a
warning.
"""

from __future__ import annotations

from orchestrator.lazylog import get_logger

log = get_logger(__name__)

__all__ = ["DirectiveError", "Directives", "parse_directives"]

MAGIC = "#SBATCH"
OLD_MAGIC = "#SLURM"


class DirectiveError(Exception):
    """A directive sbatch refuses with a fatal error (unmatched quote, stray ``:``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Directives:
    """The arguments found in a script, in order, and any warnings sbatch would print."""

    __slots__ = ("args", "warnings")

    def __init__(self) -> None:
        self.args: list[str] = []
        self.warnings: list[str] = []


def _split_args(text: str, file: str, lineno: int) -> list[str]:
    """sbatch's get_argument, applied until the line is used up.

    Errors quote the rest of the line from where the failing argument's scan began,
    as sbatch does (``Unmatched `"` in [ "x]``).
    """
    args: list[str] = []
    n = len(text)
    i = 0
    while i < n and text[i].isspace():
        i += 1
    while True:
        seg = text[i:]
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == ":":
            raise DirectiveError(f"{file}: line {lineno}: Unexpected `:` in [{seg}]")
        if i >= n:
            break
        arg: list[str] = []
        quote = ""
        escape = False
        while i < n and (quote or not text[i].isspace()):
            ch = text[i]
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
                i += 1
                continue
            elif quote:
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
            elif ch in ("'", '"'):
                quote = ch
                i += 1
                continue
            elif ch == "#":
                break  # an unescaped '#' starts a comment: the rest of the line is ignored
            arg.append(ch)
            i += 1
        if quote:
            raise DirectiveError(f"{file}: line {lineno}: Unmatched `{quote}` in [{seg}]")
        if not arg:
            break  # nothing copied ("" or a comment): the line ends here, as in sbatch
        args.append("".join(arg))
        if i < n and text[i] == "#":
            break
    return args


def _is_command(line: str) -> bool:
    """A line that ends the directive block: its first non-blank character is not ``#``."""
    stripped = line.lstrip()
    return bool(stripped) and not stripped.startswith("#")


def parse_directives(script: str, file: str = "stdin", magic: str = MAGIC) -> Directives:
    """Collect the option arguments of every directive before the first command line.

    Raises DirectiveError (sbatch prints ``sbatch: fatal: <message>`` and exits 1).
    """
    found = Directives()
    warned = False
    for lineno, line in enumerate(script.split("\n"), start=1):
        if line.startswith(magic):
            rest = line[len(magic):]
        elif magic == MAGIC and line.startswith(OLD_MAGIC):
            rest = line[len(OLD_MAGIC):]
            if not warned:
                found.warnings.append("Change from #SLURM to #SBATCH in your script and verify the "
                                      "options are valid in sbatch")
                warned = True
        else:
            if _is_command(line):
                break
            continue
        stripped = rest.lstrip()
        word = stripped.split(None, 1)[0].lower() if stripped.split() else ""
        if word in ("hetjob", "packjob"):
            # heterogeneous job components are not supported: stop at the first separator
            break
        found.args.extend(_split_args(rest, file, lineno))
    return found
