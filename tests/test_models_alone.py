"""A process that has imported only some of the tables still reads and writes: each models module names what
its relationships need, and a flush imports the whole model first (a read command loads only the tables it
queries, so that it answers at once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODELS = sorted(
    f"tenure.{path.parent.name}.models"
    for path in (Path(__file__).parent.parent / "src" / "tenure").glob("*/models.py")
)


def _run(probe: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", MODELS)
def test_each_models_module_alone_reads_every_table_it_maps(db, module):
    probe = (
        "import sys\n"
        "from sqlalchemy import select\n"
        "from tenure.db.base import Base\n"
        "from tenure.db.engine import Database\n"
        f"import {module} as models\n"
        "assert 'tenure.models' not in sys.modules\n"
        "mapped = [m.class_ for m in Base.registry.mappers if m.class_.__module__ == models.__name__]\n"
        f"database = Database({db.url!r})\n"
        "with database.reader() as s:\n"
        "    for cls in mapped:\n"
        "        s.execute(select(cls).limit(1)).all()\n"
        "print('READ', len(mapped))\n"
    )
    done = _run(probe)
    assert done.returncode == 0 and "READ" in done.stdout, done.stdout + done.stderr
    assert int(done.stdout.split()[-1]) >= 1


def test_a_write_outside_a_unit_of_work_knows_every_table(db):
    """An agreement names its client, whose table this process never imported: the flush brings it."""
    probe = (
        "import sys\n"
        "from datetime import date\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from tenure.agreements.models import Agreement\n"
        "from tenure.db.engine import Database\n"
        "assert 'tenure.clients.models' not in sys.modules\n"
        f"database = Database({db.url!r})\n"
        "with database.reader() as s:\n"
        "    s.add(Agreement(client_id=987654, key='alone-1', kind='adhoc', start=date(2026, 1, 1)))\n"
        "    try:\n"
        "        s.flush()\n"
        "    except IntegrityError:\n"
        "        pass  # no such client: the database said so, which it could only do once the flush was sent\n"
        "    s.rollback()\n"
        "print('FLUSHED', 'tenure.models' in sys.modules)\n"
    )
    done = _run(probe)
    assert "FLUSHED True" in done.stdout, done.stdout + done.stderr
