"""The ASGI app for uvicorn, configured from the BANDIT_* settings.

Its process logs JSON lines, the decision traces among them: each uvicorn worker is a
process of its own that starts with Python's logging defaults, and imports this module.
"""

from bandit_pipeline.serving.app import create_app
from bandit_pipeline.serving.logs import configure_json_logging
from bandit_pipeline.settings import get_settings

configure_json_logging()
app = create_app(get_settings())
