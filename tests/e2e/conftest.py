"""End-to-end tests reuse the agent tests' room and worker fakes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))
