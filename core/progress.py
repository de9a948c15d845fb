"""A progress line for the long-running management commands (no dependency)."""

import time
from typing import Any


class Progress:
    """Redraws one line on a terminal; elsewhere (logs, CI) writes a line every few seconds."""

    def __init__(self, stream: Any, *, total: int | None = None, label: str = "", width: int = 30):
        self.stream, self.total, self.label, self.width = stream, total, label, width
        self.started = time.monotonic()
        self.last_line = 0.0
        self.tty = stream.isatty()

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if not self.tty and now - self.last_line < 5 and done != self.total:
            return
        self.last_line = now
        elapsed = max(now - self.started, 1e-6)
        rate = f"{done / elapsed:,.0f}/s"
        if self.total:
            filled = int(self.width * min(done, self.total) / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"{self.label} [{bar}] {done:,}/{self.total:,} {100 * done / self.total:5.1f}% {rate} {extra}"
        else:
            text = f"{self.label} {done:,} {rate} {extra}"
        self._write(("\r" + text + "\x1b[K") if self.tty else text + "\n")

    def _write(self, text: str) -> None:
        # Django's OutputWrapper appends a newline unless told otherwise.
        if hasattr(self.stream, "ending"):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()

    def finish(self) -> float:
        if self.tty:
            self._write("\n")
        return time.monotonic() - self.started
