"""Maps the design card's top-level folders onto the errloop.* namespace (DESIGN.md §2).

Everything else is in pyproject.toml; only the package list is computed here, so a new
sub-package needs no edit.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "udf": "errloop.udf",
    "telegraf": "errloop.telegraf",
    "rules": "errloop.rules",
    "deploy": "errloop.deploy",
    "templates": "errloop.templates",
}
DATA = ["*.yaml", "*.yml", "*.j2", "*.proto", "*.pyi", "*.md", "*.conf", "*.json", "*.go", "go.mod", "go.sum", "py.typed"]

packages: list[str] = []
for folder, name in FOLDERS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir={name: folder for folder, name in FOLDERS.items()},
    package_data={name: DATA + [f"{d}/*" for d in ("policies", "default", "stack", "service")] for name in packages},
    include_package_data=False,
)
