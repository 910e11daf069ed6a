"""LlamaIndex adapters for m3-hybrid."""
