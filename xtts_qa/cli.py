"""The ``xtts-qa`` command line: the parser, logging and the error boundary; each command family lives in its own
module (``xtts_qa.commands.check``: check/rules/rule, ``commands.eval``, ``commands.history``, ``sweep``, ``demo``).

Exit codes: 0 pass, 1 fail (findings at or above ``--fail-on``, failed gates), 2 cannot run (usage error or
unreadable input).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from xtts_qa import __version__
from xtts_qa.errors import XttsQaError

log = logging.getLogger("xtts_qa")

#: modules that add sub-commands: each has ``register(subparsers)`` setting ``func`` on its parsers
COMMAND_MODULES = [
    "xtts_qa.commands.check",
    "xtts_qa.demo.run",
    "xtts_qa.commands.history",
    "xtts_qa.commands.eval",
    "xtts_qa.commands.repair",
    "xtts_qa.sweep",
]


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``check`` and the pytest plugin's health items."""
    parser.add_argument(
        "--base", help="base model folder to compare with (the model this checkpoint was fine-tuned from)"
    )
    parser.add_argument(
        "--intent",
        choices=("inference", "finetune", "restore"),
        default=None,
        help="what you will do with it: speak (inference, the default), start a fine-tune from it, or resume "
        "training (restore)",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODE|GROUP|NAME",
        help="run only these rules (code, code prefix such as XQ4, group, or name); repeatable, comma-separated",
    )
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="CODE|GROUP|NAME", help="skip these rules; repeatable"
    )


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """``["XQ4,dvae", "XQ701"]`` -> ``("XQ4", "dvae", "XQ701")`` (repeatable, comma-separated options)."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def build_parser() -> argparse.ArgumentParser:
    """The ``xtts-qa`` parser with every sub-command; ``-q``/``-v`` are accepted before and after the sub-command."""
    parser = argparse.ArgumentParser(
        prog="xtts-qa",
        description="Health checks and evaluation for Coqui XTTS-v2 checkpoints. Settings shared with the pytest "
        "plugin are read from [tool.xtts_qa] in the nearest pyproject.toml; the command line wins.",
        epilog="Exit codes: 0 pass, 1 fail (findings at or above --fail-on, failed gates), 2 cannot run. "
        "`xtts-qa COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"xtts-qa {__version__}")
    _add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        _add_verbosity(command, top=False)
        if not command.description and helps.get(name):  # registered without one: its one-line help, as a sentence
            text = str(helps[name])
            command.description = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-q``/``-v`` on the main parser and on each sub-command; a sub-command's own ``-v`` (more detail in its
    report) is kept. After the sub-command they default to SUPPRESS so they never undo the ones given before it."""
    taken = {s for action in parser._actions for s in action.option_strings}
    default = False if top else argparse.SUPPRESS
    if "-q" not in taken:
        parser.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=default,
            help="only warnings and errors on stderr, no progress",
        )
    if "-v" not in taken:
        parser.add_argument(
            "-v", "--verbose", action="store_true", default=default, help="more detail (debug log lines on stderr)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xtts-qa``; returns the exit code."""
    # transformers sets its own log level when imported (the GPT2 config warnings coqui-tts triggers are noise here)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.WARNING if args.quiet else logging.DEBUG if args.verbose and args.command != "check" else logging.INFO
    )
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    logging.getLogger("xtts_qa").setLevel(level)
    for noisy in ("TTS", "trainer", "transformers", "numba", "faster_whisper", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return _run_guarded(args)


def _run_guarded(args: argparse.Namespace) -> int:
    """The error boundary of every command: one line on stderr and exit 2, never a traceback (it goes to the
    debug log: ``XTTS_QA_DEBUG=1`` prints it). ``[tool.xtts_qa]`` is read here, once, into ``args.settings``."""
    from xtts_qa.errors import EnvironmentProblem
    from xtts_qa.inputs import describe_os_error
    from xtts_qa.settings import load_settings

    try:
        args.settings = load_settings()
        return int(args.func(args))
    except EnvironmentProblem as err:  # the machine, not the user's files
        print(f"xtts-qa: environment problem: {err}", file=sys.stderr)
        return 2
    except XttsQaError as err:  # InputError, UsageError: one line naming the file and the fix
        print(f"xtts-qa: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xtts-qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 2
    except OSError as exc:  # a path the user named that no reader above turned into an InputError
        problem, fix = describe_os_error(exc)
        where = exc.filename if isinstance(exc.filename, str) and len(exc.filename) < 300 else "input"
        print(f"xtts-qa: error: {where}: {problem} Fix: {fix}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError) as exc:
        log.debug("unbounded input", exc_info=True)
        print(
            f"xtts-qa: error: an input needs more {'nesting' if isinstance(exc, RecursionError) else 'memory'} "
            "than this check may use (see README: Resource limits). Fix: check the files you passed.",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # a defect in xtts_qa: still one line, the traceback only on request
        if os.environ.get("XTTS_QA_DEBUG"):
            raise
        log.debug("internal error", exc_info=True)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        print(
            f"xtts-qa: internal error: {type(exc).__name__}: {text} "
            "(please report it; XTTS_QA_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
