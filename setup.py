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
# data files anywhere below a package folder (templates/alerts/, rules/policies/, deploy/demo/service/, …)
DATA_SUFFIXES = ("yaml", "yml", "j2", "gotmpl", "proto", "pyi", "md", "conf", "json", "jsonl", "go", "mod", "sum")
DATA = [f"**/*.{suffix}" for suffix in DATA_SUFFIXES] + ["**/py.typed"]

packages: list[str] = []
for folder, name in FOLDERS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir={name: folder for folder, name in FOLDERS.items()},
    package_data={name: DATA for name in packages},
    include_package_data=False,
)
