"""Entry point: parses arguments, runs the command, maps exceptions to exit codes and one-line messages."""

from __future__ import annotations

import sys
import warnings

from ..exceptions import KeyTextWarning, ModelCryptError
from ._common import EXIT_DATA, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_IO, EXIT_USAGE, CommandError, _safe_message
from ._parser import _build_parser
from ._signals import Terminated, signals_cancel
from ._urls import check_arguments, redact


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _text_streams() -> None:
    """Messages name files and options as given; characters the terminal's encoding cannot show
    (lone surrogates from non-UTF-8 file names) come out escaped instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def main(argv: list[str] | None = None) -> int:
    _text_streams()
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    warnings.showwarning = _show_warning
    warnings.simplefilter("default")
    # The CLI's keys come from key files, which warn about a raw text key themselves (keys.py); the
    # library's generic warning about the same key ("... open(...).read()?") would only repeat it.
    warnings.filterwarnings("ignore", message=r"the \d+-byte key ", category=KeyTextWarning)
    def error(message: str) -> None:  # storage options' secrets masked, URLs without credentials
        print(f"modelcrypt: {redact(args, message)}", file=sys.stderr)

    try:
        with signals_cancel():  # SIGTERM/SIGHUP cancel like Ctrl-C (no partial output)
            check_arguments(args)  # URLs where only local paths are taken
            return args.func(args)
    except Terminated as exc:
        print(f"modelcrypt: terminated by {exc.name}; no output was written", file=sys.stderr)
        return 128 + exc.signum
    except CommandError as exc:
        error(f"error: {exc}")
        return exc.code
    except ModelCryptError as exc:
        error(f"error: {exc}")
        return EXIT_DATA
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename and str(exc.filename) not in str(exc) else ""
        error(f"error: {exc}{where}")
        return EXIT_IO
    except (ValueError, TypeError, OverflowError) as exc:  # argument values the API refused (bad input)
        error(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("modelcrypt: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - never a traceback (it could show data); one line instead
        error(f"internal error: {_safe_message(exc)}")
        return EXIT_INTERNAL
