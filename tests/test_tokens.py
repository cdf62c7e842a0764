"""API tokens: shown once, stored only as a hash, refused once revoked."""

import json

from sqlalchemy import select

from tenure.accounts.models import ApiToken
from tenure.accounts.service import authenticate, create_token, revoke_token


def test_token_is_stored_hashed_and_revocable(db):
    token, _ = create_token(db, "alertmanager", "intake")
    assert authenticate(db, token).role == "intake"
    with db.reader() as s:
        row = s.scalars(select(ApiToken)).one()
        assert token not in (row.token_hash, row.prefix) and row.prefix in token
    assert authenticate(db, token + "x") is None and authenticate(db, "Bearer nonsense") is None
    revoke_token(db, "alertmanager")
    assert authenticate(db, token) is None


def test_cli_prints_the_token_once_and_never_lists_it(cli):
    created = cli("token", "create", "ci-bot", "--role", "bookkeeper")
    token = created.stdout.strip()
    assert token.startswith("tnr_") and "will not be shown again" in created.stderr
    listed = cli("token", "list", "--json").stdout
    assert token not in listed and json.loads(listed)["tokens"][0]["role"] == "bookkeeper"
    bad = cli("token", "create", "x", "--role", "god", check=False)
    assert bad.returncode == 1 and "role 'god' is not one of" in bad.stderr
