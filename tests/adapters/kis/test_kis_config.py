"""KIS settings: options, environment, config file; clear errors; no secret in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderlane import Capability
from orderlane.errors import ConfigurationError
from orderlane_kis.adapter import create_live_adapter, create_paper_adapter
from orderlane_kis.config import HOSTS, load_settings, mask_account

APP_KEY = "PSabcdefghijklmnopqrstuvwxyz01234567"[:36]
APP_SECRET = "s" * 180
CREDENTIALS = {"app_key": APP_KEY, "app_secret": APP_SECRET, "account": "12345678-01"}


def test_adapters_are_described_without_any_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_KEY", "APP_SECRET", "ACCOUNT", "HTS_ID", "CONFIG"):
        monkeypatch.delenv(f"ORDERLANE_KIS_{name}", raising=False)
    paper = create_paper_adapter({}).orderlane_adapter_info()
    live = create_live_adapter({}).orderlane_adapter_info()
    assert (paper.name, live.name) == ("kis-paper", "kis-live")
    assert (paper.page_size, live.page_size) == (15, 100)
    assert paper.timezone == "Asia/Seoul"
    assert {Capability.LOOKUP, Capability.BATCH_STATUS, Capability.CANCEL} <= paper.capabilities
    assert Capability.PUSH not in paper.capabilities  # no HTS id, no notices
    assert "LIVE" in live.description


def test_defaults_are_kis_hosts_and_limits() -> None:
    paper = load_settings("paper", {}, environ={})
    live = load_settings("live", {}, environ={})
    assert (paper.rest_url, paper.ws_url) == HOSTS["paper"]
    assert (live.rest_url, live.ws_url) == HOSTS["live"]
    assert (paper.rate_limit, live.rate_limit) == (1, 18)
    assert create_paper_adapter({}).orderlane_rate_limits(ctx=None)[0].limit == 1  # type: ignore[arg-type]


def test_options_win_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "kis.toml"
    config.write_text(
        f'[kis]\napp_key = "{APP_KEY}"\napp_secret = "{APP_SECRET}"\n'
        'account = "11111111-01"\nhts_id = "from-file"\nrate_limit = 3\n'
    )
    settings = load_settings(
        "paper",
        {"account": "22222222-01", "rest_url": "http://127.0.0.1:1/"},
        environ={"ORDERLANE_KIS_CONFIG": str(config), "ORDERLANE_KIS_HTS_ID": "from-env"},
    )
    assert settings.account == "22222222-01"
    assert settings.hts_id == "from-env"
    assert settings.app_key == APP_KEY
    assert settings.rate_limit == 3
    assert settings.rest_url == "http://127.0.0.1:1"
    assert settings.sources["account"] == "option"
    assert settings.sources["app_key"] == f"file {config}"
    assert settings.notices  # an HTS id turns the notices on


def test_an_account_without_the_dash_is_read_too() -> None:
    assert load_settings("paper", {"account": "1234567801"}, environ={}).account == "12345678-01"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"account": "1234-01"}, "account from option is malformed"),
        ({"app_key": "short"}, "app_key from option has 5 characters"),
        ({"app_secret": "x" * 179}, "app_secret from option has 179 characters"),
        ({"rate_limit": "fast"}, "'rate_limit' must be a number above 0"),
        ({"rate_limit": "0"}, "'rate_limit' must be a number above 0"),
        ({"new_order_lag": "-1"}, "'new_order_lag' must be a number 0 or more"),
        ({"push": "maybe"}, "'push' must be true or false"),
        ({"appkey": APP_KEY}, "unknown kis-paper options"),
        (
            {"rest_url": "openapivts.koreainvestment.com:29443"},
            "rest_url from option is 'openapivts.koreainvestment.com:29443': expected http",
        ),
        ({"rest_url": "https://"}, "rest_url from option is 'https://': expected http"),
        ({"rest_url": "http://127.0.0.1:port"}, "rest_url from option is .*expected http"),
        ({"ws_url": "https://ops.koreainvestment.com:31000"}, "ws_url from option is .*ws://"),
    ],
)
def test_malformed_settings_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings("paper", options, environ={})


def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings("paper", {"config_file": str(tmp_path / "none.toml")}, environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("app_key = ")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_settings("paper", {"config_file": str(broken)}, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('secret = "x"\n')
    with pytest.raises(ConfigurationError, match=r"unknown keys \['secret'\]"):
        load_settings("paper", {"config_file": str(unknown)}, environ={})


def test_missing_credentials_are_named_when_the_adapter_starts() -> None:
    settings = load_settings("paper", {"account": "12345678-01"}, environ={})
    with pytest.raises(ConfigurationError) as refused:
        settings.require()
    assert "ORDERLANE_KIS_APP_KEY" in str(refused.value)
    assert "ORDERLANE_KIS_APP_SECRET" in str(refused.value)
    assert "ACCOUNT" not in str(refused.value)


def test_notices_asked_for_without_an_hts_id_are_refused() -> None:
    settings = load_settings("paper", {**CREDENTIALS, "push": "true"}, environ={})
    with pytest.raises(ConfigurationError, match="ORDERLANE_KIS_HTS_ID"):
        settings.require()
    load_settings("paper", {**CREDENTIALS, "push": "false"}, environ={}).require()


def test_live_trading_needs_the_account_typed_on_purpose() -> None:
    settings = load_settings("live", CREDENTIALS, environ={})
    with pytest.raises(ConfigurationError) as refused:
        settings.require()
    message = str(refused.value)
    assert "ORDERLANE_KIS_LIVE_TRADING" in message
    assert "12****78-01" in message
    assert "12345678" not in message
    other = load_settings("live", {**CREDENTIALS, "live_trading": "87654321-01"}, environ={})
    with pytest.raises(ConfigurationError, match="another account"):
        other.require()
    for typed in ("12345678-01", "1234567801"):
        load_settings("live", {**CREDENTIALS, "live_trading": typed}, environ={}).require()
    paper = load_settings("paper", CREDENTIALS, environ={})
    paper.require()  # paper needs no opt-in


def test_no_secret_in_reprs() -> None:
    adapter = create_paper_adapter({**CREDENTIALS, "hts_id": "hts-user"})
    shown = " ".join(
        repr(thing)
        for thing in (
            adapter,
            adapter.settings,
            adapter.http,
            adapter.http.tokens,
            adapter.http.tokens.store,
            adapter.notices,
            adapter.inquiry,
        )
    )
    for secret in (APP_KEY, APP_SECRET, "12345678", "hts-user"):
        assert secret not in shown
    assert "12****78-01" in shown


@pytest.mark.parametrize(
    ("account", "masked"),
    [("12345678-01", "12****78-01"), (None, "(no account)"), ("bad", "(malformed account)")],
)
def test_masked_account(account: str | None, masked: str) -> None:
    assert mask_account(account) == masked


def test_the_token_cache_is_keyed_by_app_key_and_host_without_the_key() -> None:
    one = load_settings("paper", CREDENTIALS, environ={})
    other_host = load_settings("paper", {**CREDENTIALS, "rest_url": "http://127.0.0.1:9"}, {})
    other_key = load_settings("paper", {**CREDENTIALS, "app_key": "X" * 36}, environ={})
    keys = {one.credential_key, other_host.credential_key, other_key.credential_key}
    assert len(keys) == 3
    assert all(APP_KEY not in key for key in keys)
