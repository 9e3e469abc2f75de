"""A report folder that is either the old report or the complete new one, never half of either.

    check_output(out, overwrite)        # before the work: refuse an existing folder without --overwrite
    with report_folder(out) as tmp:     # write everything into tmp (a hidden sibling of out) ...
        (tmp / 'metrics.json').write_text(...)
                                        # ... moved into place when the block ends without an error

An error inside the block removes the temporary folder, logs that nothing was written and re-raises; ``out``
keeps whatever was there.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ['check_output', 'report_folder', 'replace_atomically']

logger = logging.getLogger(__name__)


def check_output(out: Path, overwrite: bool) -> None:
    """Raise FileExistsError when ``out`` exists and ``overwrite`` is not set (call it before the work)."""
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f'output folder {out} exists; pass --overwrite to replace it')


def replace_atomically(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is moved aside first and deleted only afterwards, so
    at every moment either the old or the new report is complete at ``out``'s place."""
    old = None
    if out.exists():
        old = out.parent / f'.{out.name}.old-{uuid.uuid4().hex[:8]}'
        out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def report_folder(out: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``out`` to write the report into; see the module docstring."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f'.{out.name}.tmp-{uuid.uuid4().hex[:8]}'
    tmp.mkdir()
    try:
        yield tmp
        replace_atomically(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        logger.error('evaluation failed: nothing was written to %s', out)
        raise
