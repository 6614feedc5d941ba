"""One exception type for every problem a release manager must read and act on."""


class RunbookError(Exception):
    """A clear, one-line error that names the thing at fault (setting, file, table, row).

    The CLI prints it without a traceback and exits 2; flows let it fail the run.
    """


class GateFailed(RunbookError):
    """A gate did not hold. Carries the structured result for alerts and artifacts."""

    def __init__(self, result):
        self.result = result
        super().__init__(f"gate {result.name!r} failed: {result.summary}")
