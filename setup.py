"""Distribution of liveupload: a BEAM-style actor runtime on Pykka that runs
Phoenix LiveView's upload pipeline."""

from setuptools import find_packages, setup

setup(
    name="liveupload",
    version="0.1.0",
    description="BEAM-style processes on Pykka running Phoenix LiveView's upload pipeline",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["actors", "writers", "supervision", "server", "benchmarks", "benchmarks.*"]),
    package_data={"server": ["static/*"]},
    install_requires=[
        "pykka>=4.1,<5",
        "structlog>=24.1",
        "itsdangerous>=2.1",
        "starlette>=0.37",
        "uvicorn>=0.29",
        "websockets>=15",
        "psutil>=5.9",
        "tqdm>=4.66",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "httpx>=0.27",
            "selenium>=4.20",
            "boto3>=1.34",
        ],
        "s3": ["boto3>=1.34"],
    },
    entry_points={"console_scripts": ["liveupload = server.cli:main"]},
)
