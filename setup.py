"""Distribution of liveupload: a BEAM-style actor runtime on Pykka that runs
Phoenix LiveView's upload pipeline."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="liveupload",
    version="0.1.0",
    description="BEAM-style processes on Pykka running Phoenix LiveView's upload pipeline",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(
        include=[
            "actors", "actors.*", "writers", "supervision", "uploads",
            "server", "server.*", "client", "cli",
            "benchmarks", "benchmarks.*",
        ]
    ),
    package_data={"server.page": ["templates/*.j2", "templates/live/*.j2", "static/*.css", "static/*.svg"]},
    install_requires=[
        "pykka>=4.1,<5",
        "structlog>=24.1",
        "itsdangerous>=2.1",
        "starlette>=0.37",
        "uvicorn>=0.29",
        "websockets>=15",  # the Python client's socket, and uvicorn's WebSocket protocol
        "jinja2>=3.1",
        "markupsafe>=2.1",
        "tqdm>=4.66",  # `liveupload send` draws its progress bars with it
    ],
    extras_require={
        # `liveupload bench` and `liveupload crashtest`: plots and process inspection.
        "bench": [
            "matplotlib>=3.8",
            "psutil>=5.9",
            "boto3>=1.34",  # `liveupload bench s3`
            "py-spy>=0.3",  # profiling the server under the wire scenario (docs/benchmarks.md)
        ],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "httpx>=0.27",
            "selenium>=4.20",
            "psutil>=5.9",  # tests/conftest.py checks for leaked threads and files
            "boto3>=1.34",  # tests/s3 drive S3Writer against a real Swift
            "ruff>=0.17,<0.18",  # the README's test command lints first
            "mypy>=2.4,<2.5",  # ... and checks types
        ],
        "s3": ["boto3>=1.34"],
    },
    entry_points={"console_scripts": ["liveupload = cli.main:main"]},
)
