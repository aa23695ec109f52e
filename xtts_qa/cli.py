"""The ``xtts-qa`` command line: ``check``, ``rules``, ``rule``, ``demo`` and the commands other modules register.

Exit codes: 0 healthy, 1 findings at error severity, 2 cannot run (usage error or unreadable input).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from xtts_qa import __version__
from xtts_qa.errors import XttsQaError

log = logging.getLogger("xtts_qa")

#: modules that add sub-commands: each has ``register(subparsers)`` setting ``func`` on its parsers
COMMAND_MODULES = [
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
        default="inference",
        help="what you will do with it: speak (inference), start a fine-tune from it, or resume training (restore)",
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
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _cmd_check(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_check
    from xtts_qa.engine import check
    from xtts_qa.rules import CheckOptions

    options = CheckOptions(intent=args.intent, select=split_list(args.select), ignore=split_list(args.ignore))
    report = check(args.target, args.base, options)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_check(report, colour=sys.stdout.isatty(), verbose=args.verbose))
    return report.exit_code


def _cmd_rules(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_rule_table
    from xtts_qa.rules import select_rules

    rules = select_rules(split_list(args.select))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "code": r.code,
                        "name": r.name,
                        "severity": r.severity.value,
                        "severity_by_intent": {i: (s.value if s else None) for i, s in r.severities().items()},
                        "groups": list(r.groups),
                        "repair": r.repair,
                        "what": r.what,
                        "why": r.why,
                        "fix": r.fix,
                    }
                    for r in rules
                ],
                indent=2,
            )
        )
    else:
        print(render_rule_table(rules))
    return 0


def _cmd_rule(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_rule
    from xtts_qa.rules import get_rule

    print(render_rule(get_rule(args.code)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtts-qa", description="Health checks and evaluation for Coqui XTTS-v2 checkpoints."
    )
    parser.add_argument("--version", action="version", version=f"xtts-qa {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="structural health check of a model folder or checkpoint file (CPU, seconds)")
    p.add_argument("target", help="model folder (model.pth, config.json, vocab.json, ...) or a trainer checkpoint file")
    add_rule_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="also show notes in full and the skipped rules")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("rules", help="list the rules")
    p.add_argument("--select", action="append", default=[], help="only these codes, groups or names")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_rules)

    p = sub.add_parser("rule", help="explain one rule: what it checks, why it matters, how to fix it")
    p.add_argument("code", help="rule code (XQ401) or name (dvae-key-set)")
    p.set_defaults(func=_cmd_rule)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xtts-qa``; returns the exit code."""
    # transformers sets its own log level when imported (the GPT2 config warnings coqui-tts triggers are noise here)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("TTS", "trainer", "transformers", "numba", "faster_whisper", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return _run_guarded(args)


def _run_guarded(args: argparse.Namespace) -> int:
    """The error boundary of every command: one line on stderr and exit 2, never a traceback (it goes to the
    debug log: ``XTTS_QA_DEBUG=1`` prints it)."""
    from xtts_qa.errors import EnvironmentProblem
    from xtts_qa.inputs import describe_os_error

    try:
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
            f"xtts-qa: error: an input needs more {'nesting' if isinstance(exc, RecursionError) else 'memory'} than this "
            "check may use (see README: Resource limits). Fix: check the files you passed.",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # a defect in xtts_qa: still one line, the traceback only on request
        if os.environ.get("XTTS_QA_DEBUG"):
            raise
        log.debug("internal error", exc_info=True)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        print(
            f"xtts-qa: internal error: {type(exc).__name__}: {text} (please report it; XTTS_QA_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
