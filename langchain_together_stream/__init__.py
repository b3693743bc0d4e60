"""Stream Together AI completions and chat into LangChain, token by token."""

from langchain_together_stream._version import __version__
from langchain_together_stream.chat_models import ChatTogether
from langchain_together_stream.errors import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherCertificateError,
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
)
from langchain_together_stream.llms import TogetherLLM

__all__ = [
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
