"""Print the report's HTML to PDF (or a PNG) with headless Chromium.

The console's browser tests already need Debian's Chromium, so it is the
report's only PDF stack: ``chromium --headless --print-to-pdf``, with a
throw-away profile directory, no network beyond the ``file://`` page (the
page itself loads nothing: see :mod:`~monitor.ops.report.render`) and a
timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from monitor.ops.report.data import ReportError

#: Where Debian's ``chromium`` package puts the browser.
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
#: Seconds Chromium gets to print.
DEFAULT_TIMEOUT = 60.0
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_chromium(path: Path | None = None) -> Path:
    """Return the Chromium executable to use.

    Args:
        path: An explicit executable; else :data:`DEFAULT_CHROMIUM`, else
            ``chromium`` or ``chromium-browser`` on ``PATH``.

    Raises:
        ReportError: If there is none (with how to install it).

    """
    candidates = [path] if path is not None else [DEFAULT_CHROMIUM]
    for candidate in candidates:
        if candidate.is_file() and shutil.which(str(candidate)):
            return candidate
    if path is None:
        for name in ("chromium", "chromium-browser"):
            found = shutil.which(name)
            if found:
                return Path(found)
    raise ReportError(
        f"Chromium is missing (looked for {candidates[0]}): the PDF is printed by "
        "headless Chromium. Install Debian's chromium package (make system-deps) "
        "or pass --chromium PATH; the HTML report was written all the same."
    )


def _run(chromium: Path, args: list[str], output: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="monitor-report-") as profile:
        command = [str(chromium), *_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise ReportError(f"Chromium could not start: {exc.strerror}") from None
    if done.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise ReportError(
            f"Chromium exited {done.returncode} without writing {output.name}: "
            + " | ".join(tail)
        )


def print_pdf(
    html: Path,
    pdf: Path,
    *,
    chromium: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Print ``html`` to ``pdf`` (A4, the page's print style, no header/footer).

    Raises:
        ReportError: If Chromium is missing, fails or times out.

    """
    browser = find_chromium(chromium)
    pdf = pdf.resolve()
    pdf.unlink(missing_ok=True)
    _run(
        browser,
        [
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ],
        pdf,
        timeout,
    )


def screenshot(
    html: Path,
    png: Path,
    *,
    width: int = 1200,
    height: int = 2400,
    chromium: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Render ``html`` to a ``width`` x ``height`` PNG (the page's top part).

    Raises:
        ReportError: If Chromium is missing, fails or times out.

    """
    browser = find_chromium(chromium)
    png = png.resolve()
    png.unlink(missing_ok=True)
    _run(
        browser,
        [
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ],
        png,
        timeout,
    )
