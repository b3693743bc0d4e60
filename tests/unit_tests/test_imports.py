import langchain_together_stream
from langchain_together_stream import __all__

EXPECTED_ALL = [
    "ChatTogether",
    "TogetherAPIError",
    "TogetherAuthenticationError",
    "TogetherBadRequestError",
    "TogetherCertificateError",
    "TogetherConfigurationError",
    "TogetherConnectionError",
    "TogetherError",
    "TogetherLLM",
    "TogetherRateLimitError",
    "TogetherServerError",
    "TogetherStreamError",
    "TogetherTimeoutError",
    "__version__",
]


def test_all_lists_the_public_names_sorted() -> None:
    assert __all__ == EXPECTED_ALL
    for name in __all__:
        assert hasattr(langchain_together_stream, name)
