"""The wheel carries every file the tool reads: manifests/, dashboards/ and cluster/ become the
package data chaos/resources/* (found by chaos.resources.shipped). The rest is in pyproject.toml."""

from setuptools import find_packages, setup

SHIPPED = ("manifests", "dashboards", "cluster")

setup(
    packages=find_packages(include=["chaos", "chaos.*"])
    + [f"chaos.resources.{name}" for name in SHIPPED],
    package_dir={f"chaos.resources.{name}": name for name in SHIPPED},
    package_data={"chaos": ["py.typed", "view/static/*"],
                  **{f"chaos.resources.{name}": ["**/*"] for name in SHIPPED}},
)
