"""`actors.Secret` and `actors.redact`: secrets are redacted by type and by value."""

from __future__ import annotations

import json
import pprint
import secrets

from actors import Secret, redact, register_secret


def test_a_secret_is_its_value_but_its_repr_never_shows_it() -> None:
    value = f"key-{secrets.token_hex(8)}"
    secret = Secret(value)
    assert secret == value
    assert f"Bearer {secret}" == f"Bearer {value}"
    assert value not in repr(secret)
    assert value not in pprint.pformat({"config": [secret]})


def test_a_registered_value_is_scrubbed_from_text_and_from_json_that_escapes_it() -> None:
    value = f'tok"en\\{secrets.token_hex(8)}'
    register_secret(value)
    assert redact(f"Bot[token={value}]") == "Bot[token=<redacted>]"
    assert value not in redact(json.dumps({"token": value}))
    assert json.loads(redact(json.dumps({"token": value}))) == {"token": "<redacted>"}


def test_a_short_value_is_not_registered_so_ordinary_text_survives() -> None:
    register_secret("abc")
    assert redact("abcdef") == "abcdef"
