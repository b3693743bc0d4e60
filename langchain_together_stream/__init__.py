"""Stream Together AI completions into LangChain, token by token."""

from langchain_together_stream._version import __version__

__all__ = ["__version__"]
