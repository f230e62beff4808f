"""infinstor_jlab: time-travel views of versioned S3 buckets, in JupyterLab and from boto3."""

try:
    from ._version import __version__
except ImportError:
    # Fallback when the package is used from a source tree without being installed
    # (``pip install -e .`` generates _version.py from package.json).
    import warnings

    warnings.warn("Importing 'infinstor_jlab' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "infinstor_jlab"}]


def _jupyter_server_extension_points():
    # Imported here so that `import infinstor_jlab` (CLI, kernel-side hooks) does not
    # pull in jupyter_server and tornado.
    from .app import InfinstorApp

    return [{"module": "infinstor_jlab", "app": InfinstorApp}]


def __getattr__(name: str):
    # ``from infinstor_jlab import test_infin_transform`` (the original InfinStor entry point)
    # gives the function. Resolved on first use, so that `import infinstor_jlab` stays light;
    # no submodule may carry that name, or the import would give the module instead.
    if name == "test_infin_transform":
        from .kernel.local_test import test_infin_transform

        return test_infin_transform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
