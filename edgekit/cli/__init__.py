"""The `edgekit` command: a thin typer layer over the Python API (edgekit.api, edgekit.tools).

Exit codes: 0 done, 1 the run's own work failed a check (a gate, an export's parity), 2 bad input, 130
interrupted. Every error is one line on stderr naming the problem and the fix; a traceback only with
--debug. Usage errors found by click (an unknown option, a bad choice) read the same way."""

import sys

from edgekit.errors import EdgekitError

COMMANDS = ("compress", "run", "search", "models", "bench", "build", "eval", "profile", "doctor", "report", "recipe")

# Global options, accepted anywhere on the line: the value-taking ones take the next word.
GLOBAL_FLAGS = {"--debug": 0, "-q": 0, "--quiet": 0, "-v": 0, "--verbose": 0, "--log-file": 1}


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options given after the command to the front, where click reads them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            rest += argv[i:]
            break
        name = word.split("=", 1)[0]
        if name in GLOBAL_FLAGS:
            takes = GLOBAL_FLAGS[name] if "=" not in word else 0
            front += argv[i : i + 1 + takes]
            i += 1 + takes
            continue
        rest.append(word)
        i += 1
    return front + rest


def _log_settings(argv: list[str]) -> tuple[int, str | None, bool]:
    verbosity = -1 if {"-q", "--quiet"} & set(argv) else 1 if {"-v", "--verbose"} & set(argv) else 0
    log_file = None
    for i, word in enumerate(argv):
        if word == "--log-file" and i + 1 < len(argv):
            log_file = argv[i + 1]
        elif word.startswith("--log-file="):
            log_file = word.split("=", 1)[1]
    return verbosity, log_file, "--json" in argv


def _usage_error(exc: Exception, argv: list[str]) -> int | None:
    """click's own errors (typer vendors click in newer releases: matched by shape, not by class)."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `edgekit` or `edgekit recipe` alone: help was shown
        return 0
    if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
        return None
    command = next((w for w in argv if w in COMMANDS), None)
    hint = f"edgekit {command} --help" if command else "edgekit --help"
    message = " ".join(exc.format_message().split())
    option, possible = getattr(exc, "option_name", None), getattr(exc, "possibilities", None)
    if option and possible is not None:  # NoSuchOption: its wording changes between click releases
        close = sorted(possible)
        message = f"No such option: {option}" + (f" (did you mean {' or '.join(close)}?)" if close else "")
        owner = _command_taking(option, command)
        if owner:  # a flag given to the wrong command: say whose it is rather than guess by spelling
            message = f"{option} is an option of `edgekit {owner}`, not of `edgekit {command}`"
            if command == "search":
                from edgekit.cli.search_cmd import WHY_NO_PRUNE_FLAGS

                message += f": {WHY_NO_PRUNE_FLAGS}"
    print(f"error: {message} (see `{hint}`)", file=sys.stderr)
    return int(exc.exit_code)


def _command_taking(option: str, command: str | None) -> str | None:
    """The first other edgekit command (in COMMANDS' order) that takes `option`, if any."""
    import typer.main

    from edgekit.cli.app import app

    commands = getattr(typer.main.get_command(app), "commands", {})
    for name in COMMANDS:
        params = getattr(commands.get(name), "params", [])
        if name != command and any(option in p.opts + p.secondary_opts for p in params):
            return name
    return None


def main(argv: list[str] | None = None) -> int:
    argv = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    from edgekit.cli.argv import ARGV

    ARGV[:] = argv
    debug = "--debug" in argv
    try:
        from edgekit.logs import configure_cli

        configure_cli(*_log_settings(argv))  # the command line prints edgekit's log lines as its output
        import typer.main

        from edgekit.cli.app import app

        result = typer.main.get_command(app).main(args=argv, prog_name="edgekit", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except EdgekitError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `edgekit doctor --json | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        if type(exc).__name__ == "Abort":  # click's form of Ctrl-C
            return _interrupted()
        code = _usage_error(exc, argv)
        if code is None or debug:
            raise
        return code


def _interrupted() -> int:
    print(
        "error: interrupted: the run folder keeps every finished stage; continue it with "
        "`edgekit run --resume RUN_DIR`",
        file=sys.stderr,
    )
    return 130
