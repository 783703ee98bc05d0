"""Wire schemas of the MES API (pydantic v2), shared by the API and ``mes_core.client``."""
