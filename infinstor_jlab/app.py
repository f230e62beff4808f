"""The Jupyter server extension application of infinstor_jlab."""

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from .handlers import default_handlers


class InfinstorApp(ExtensionApp):
    """Serves the infinstor_jlab REST API under ``<base_url>/infinstor/``."""

    name = "infinstor_jlab"

    index_url = Unicode(
        "",
        config=True,
        help=(
            "Location of the snapshot index (for example a sqlite:/// URL). "
            "Empty means the default location."
        ),
    )

    s3_endpoint_url = Unicode(
        "",
        config=True,
        help=(
            "Endpoint URL of an S3-compatible store. Empty means boto3's default "
            "(AWS, or AWS_ENDPOINT_URL when set)."
        ),
    )

    def initialize_handlers(self):
        # ExtensionApp prepends the server's base_url to each pattern, so these
        # resolve to url_path_join(base_url, "infinstor", ...).
        self.handlers.extend(default_handlers)
