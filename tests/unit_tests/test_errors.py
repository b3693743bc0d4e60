import pytest

from langchain_together_stream import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
)
from langchain_together_stream._statuses import api_error_class


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, TogetherBadRequestError),
        (401, TogetherAuthenticationError),
        (402, TogetherAPIError),
        (403, TogetherAuthenticationError),
        (404, TogetherBadRequestError),
        (408, TogetherAPIError),
        (422, TogetherBadRequestError),
        (429, TogetherRateLimitError),
        (500, TogetherServerError),
        (502, TogetherServerError),
        (503, TogetherServerError),
        (504, TogetherServerError),
        (599, TogetherServerError),
    ],
)
def test_every_status_maps_to_its_class(status: int, expected: type[TogetherAPIError]) -> None:
    assert api_error_class(status) is expected


def test_errors_also_subclass_the_builtin_they_resemble() -> None:
    assert issubclass(TogetherBadRequestError, ValueError)
    assert issubclass(TogetherConnectionError, ConnectionError)
    assert issubclass(TogetherTimeoutError, TimeoutError)
    assert issubclass(TogetherTimeoutError, TogetherConnectionError)
    for cls in (
        TogetherAPIError,
        TogetherConfigurationError,
        TogetherConnectionError,
        TogetherStreamError,
    ):
        assert issubclass(cls, TogetherError)
    # Not a ValueError, so pydantic cannot rewrap it during construction.
    assert not issubclass(TogetherConfigurationError, ValueError)


def test_api_error_carries_its_context_and_prints_it() -> None:
    error = TogetherRateLimitError(
        "slow down",
        error_type="rate_limit_exceeded",
        request_id="abc",
        retry_after=1.5,
        partial_text="Hel",
    )
    assert error.status_code == 429
    assert error.retry_after == 1.5
    assert error.partial_text == "Hel"
    assert str(error) == "HTTP 429 rate_limit_exceeded: slow down (request abc)"


def test_partial_text_defaults_to_empty() -> None:
    assert TogetherStreamError("broken").partial_text == ""
