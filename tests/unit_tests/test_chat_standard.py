"""LangChain's standard chat model tests, run against the bundled emulator.

`ChatModelUnitTests` checks construction, serialization and binding; the integration suite
streams real requests to the emulator over loopback (text, tools, structured output, usage,
stop sequences, agent loops). Only the tests that download files from the internet are
skipped, each with that reason; `test_stream_time` is skipped by langchain-tests itself
unless VCR cassettes recorded against the live API are set up.
"""

import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_together_stream import ChatTogether
from langchain_together_stream.emulator import TogetherEmulator

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
NEEDS_INTERNET = "needs the internet: langchain-tests downloads the file it sends with httpx"

# Standard tests that fetch their input from the internet; the rest run offline.
_NEEDS_INTERNET = frozenset({"test_image_inputs"})

_emulator: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def emulator() -> Iterator[None]:
    with TogetherEmulator() as emu:
        _emulator["base_url"] = emu.base_url
        yield
    _emulator.clear()


@pytest.fixture(autouse=True)
def _skip_what_needs_the_internet(request: pytest.FixtureRequest) -> None:
    # A fixture, not an override: langchain-tests refuses overridden standard tests.
    if request.function.__name__ in _NEEDS_INTERNET:
        pytest.skip(NEEDS_INTERNET)


class TestChatTogetherUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatTogether

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": "sk-test-standard"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"TOGETHER_API_KEY": "sk-from-env", "TOGETHER_BASE_URL": "https://example.com/v1"},
            {"model": MODEL},
            {"api_key": "sk-from-env", "base_url": "https://example.com/v1"},
        )

    @property
    def supports_json_mode(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason=(
            "cannot pass for a package outside langchain-core's mapping: "
            "load(allowed_objects='all') admits only the classes in that mapping, and "
            "BaseChatModel.dict() warns as deprecated (no snapshot is stored either, as the "
            "shared client's settings grow); test_dumpd_and_load_with_the_class_allowed "
            "checks the round trip and the secret reference"
        ),
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    def test_dumpd_and_load_with_the_class_allowed(self, model: BaseChatModel) -> None:
        # No snapshot: the shared client's settings grow, and each would break it.
        env_params, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            serialized = dumpd(model)
            assert serialized["id"] == ["langchain_together_stream", "chat_models", "ChatTogether"]
            assert serialized["kwargs"]["model"] == MODEL
            assert serialized["kwargs"]["api_key"] == {
                "lc": 1,
                "type": "secret",
                "id": ["TOGETHER_API_KEY"],
            }
            loaded = load(
                serialized,
                valid_namespaces=model.get_lc_namespace()[:1],
                allowed_objects=[ChatTogether],
                secrets_from_env=True,
            )
        assert isinstance(loaded, ChatTogether)
        assert dumpd(loaded) == serialized
        assert loaded.api_key is not None
        assert loaded.api_key.get_secret_value() == "sk-from-env"


class TestChatTogetherIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatTogether

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": "sk-test-standard", "base_url": _emulator["base_url"]}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"
