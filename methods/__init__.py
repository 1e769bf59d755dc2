"""The method catalogue: one folder per fine-tuning method; imports nothing heavy."""

from methods.catalogue import Catalogue, get_catalogue

__all__ = ["Catalogue", "get_catalogue"]
