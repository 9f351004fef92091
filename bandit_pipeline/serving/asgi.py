"""The ASGI app for uvicorn, configured from the BANDIT_* settings."""

from bandit_pipeline.serving.app import create_app
from bandit_pipeline.settings import get_settings

app = create_app(get_settings())
