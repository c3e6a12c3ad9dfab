"""Imported first by every script: a Ctrl-C while the heavy imports load (torch, torchvision, captum: a minute
on a busy machine) exits with one line and code 130 instead of a traceback from deep inside an import.
`modules.utils.cli_main` gives Ctrl-C back to Python (KeyboardInterrupt) when the script's main() starts."""
import signal
import sys


def _interrupted_while_starting(signum, frame):
    print("\ninterrupted (Ctrl-C) while starting: nothing was written", file=sys.stderr)
    sys.exit(130)


if signal.getsignal(signal.SIGINT) is signal.default_int_handler:    # an interactive session keeps its own
    signal.signal(signal.SIGINT, _interrupted_while_starting)
