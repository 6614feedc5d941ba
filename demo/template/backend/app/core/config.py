"""Settings read from the environment (no .env parsing: the process environment wins)."""
from __future__ import annotations

import os

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dawsos")
PATTERNS_DIR = os.environ.get("DAWSOS_PATTERNS_DIR", "")
FMP_BASE_URL = os.environ.get("FMP_BASE_URL", "http://127.0.0.1:8765/fmp")
POLYGON_BASE_URL = os.environ.get("POLYGON_BASE_URL", "http://127.0.0.1:8765/polygon")
FRED_BASE_URL = os.environ.get("FRED_BASE_URL", "http://127.0.0.1:8765/fred")
FMP_API_KEY = os.environ.get("FMP_API_KEY", "demo")
POLYGON_API_KEY = os.environ.get("POLYGON_API_KEY", "demo")
FRED_API_KEY = os.environ.get("FRED_API_KEY", "demo")
