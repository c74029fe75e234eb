"""`[auth]` and the per-issuer `auth` keys: read, refused with the key named, and warned
about by `config check` when a counterpart is not authenticated at all."""

from __future__ import annotations

import pytest

from mailbot.auth import AuthSettings, Requirement
from mailbot.config import ConfigError, load_config
from mailbot.config.advice import warnings

ISSUER = '[issuers.city]\nname = "〇〇市"\n'


def load(tmp_path, text):
    path = tmp_path / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_auth_table_is_read(tmp_path):
    config = load(tmp_path, '[auth]\nrequire = "dkim"\nauthserv_ids = ["MX.maru.example.jp"]\n'
                            'resolvers = ["192.0.2.53:5353", "[2001:db8::53]:53"]\n'
                            "timeout_seconds = 2.5\nretry_seconds = 60\nretries = 3\n" + ISSUER)
    assert config.auth == AuthSettings(Requirement.DKIM, ("mx.maru.example.jp",),
                                       ("192.0.2.53:5353", "[2001:db8::53]:53"), 2.5, 60, 3)
    assert load(tmp_path, ISSUER).auth == AuthSettings()


@pytest.mark.parametrize("text, where", [
    ('require = "spf"', "auth.require"),
    ('resolvers = ["ns.example.jp"]', "auth.resolvers"),
    ("timeout_seconds = 0", "auth.timeout_seconds"),
    ("retries = 0", "auth.retries"),
    ('authserv_ids = ["mx example.jp"]', "auth.authserv_ids"),
    ("resolver = []", "auth"),
])
def test_bad_auth_values_name_the_key(tmp_path, text, where):
    with pytest.raises(ConfigError, match=rf"\[{where}\]"):
        load(tmp_path, f"[auth]\n{text}\n")


def test_per_issuer_requirements_override_the_default(tmp_path):
    config = load(tmp_path, '[auth]\nrequire = "dmarc"\n' + ISSUER + 'aliases = ["〇〇市役所"]\n'
                  'auth = "dkim"\n[issuers.city.submission]\nto = "keiyaku@city.example.jp"\n'
                  'auth = "none"\n[issuers.town]\nname = "△△町"\n')
    assert config.auth_requirement("city", "issuer") == Requirement.DKIM
    assert config.auth_requirement("〇〇市役所", "contractor") == Requirement.NONE
    assert config.auth_requirement("town", "issuer") == Requirement.DMARC
    assert config.auth_requirement(None, "contractor") == Requirement.DMARC
    with pytest.raises(ValueError):
        config.auth_requirement("city", "both")
    assert config.submissions["city"].to == "keiyaku@city.example.jp"


def test_a_bad_issuer_auth_names_its_key(tmp_path):
    with pytest.raises(ConfigError, match=r"\[issuers.city.submission.auth\]"):
        load(tmp_path, ISSUER + '[issuers.city.submission]\nto = "a@city.example.jp"\n'
                                'auth = "spf"\n')


def test_config_check_warns_for_every_none(tmp_path):
    config = load(tmp_path, '[auth]\nrequire = "none"\n' + ISSUER + 'auth = "none"\n')
    found = [w for w in warnings(config) if "auth" in w]
    assert len(found) == 2
    assert found[0].startswith("[auth.require]") and found[1].startswith("[issuers.city.auth]")
    assert not [w for w in warnings(load(tmp_path, ISSUER)) if "auth" in w]
