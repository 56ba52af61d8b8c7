"""The wheel carries every file the tool reads: manifests/, dashboards/ and cluster/ become the
package data chaos/resources/* (found by chaos.resources.shipped). The rest is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

SHIPPED = ("manifests", "dashboards", "cluster")
SKIP = ["*__pycache__*"]

data = {f"chaos.resources.{name}": name for name in SHIPPED}
for name in SHIPPED:
    for sub in find_namespace_packages(where=name, exclude=SKIP):
        data[f"chaos.resources.{name}.{sub}"] = f"{name}/{sub.replace('.', '/')}"

setup(
    packages=find_namespace_packages(include=["chaos", "chaos.*"], exclude=SKIP) + list(data),
    package_dir=data,
    package_data={"chaos": ["py.typed"], "chaos.view.static": ["*"],
                  **{package: ["*"] for package in data}},
)
