"""LangChain adapters for m3-hybrid."""
