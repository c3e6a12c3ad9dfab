"""Ctrl-C at any moment of a script's life ends with one line and exit code 130, never a traceback:
while the imports load (modules.startup) and inside main() (modules.utils.cli_main)."""
import signal
import subprocess
import sys

import pytest

from modules.utils import ROOT

WHILE_IMPORTING = "import modules.startup, time\nprint('ready', flush=True)\ntime.sleep(60)\n"
IN_MAIN = ("import modules.startup, time\nfrom modules.utils import cli_main\n"
           "@cli_main(on_interrupt='rerun to go on')\ndef main():\n    print('ready', flush=True)\n    time.sleep(60)\n"
           "main()\n")


@pytest.mark.parametrize("code,expected", [(WHILE_IMPORTING, "interrupted (Ctrl-C) while starting: nothing was written"),
                                           (IN_MAIN, "interrupted (Ctrl-C); rerun to go on")],
                         ids=["while importing", "in main"])
def test_ctrl_c_is_one_line_and_exit_130(code, expected):
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [expected]
