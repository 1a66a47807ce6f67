"""Packaging for the TFX knowledge-distillation pipeline.

The repository keeps the folders the product is known by (`components/`,
`pipelines/`, `kubeflow/`, and `cli/` above them all: the `tfx-distill`
command) but installs them under import names of their own: a top-level `kubeflow` package would shadow the Kubeflow SDKs' namespace, and
`components`/`pipelines` are too generic to own in site-packages.
"""
from setuptools import find_packages, setup

_FOLDERS = {
    "distill_components": "components",
    "distill_pipelines": "pipelines",
    "distill_kubeflow": "kubeflow",
    "distill_cli": "cli",
}


def _packages():
  packages = []
  for name, folder in _FOLDERS.items():
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))
  return packages


setup(
    name="tfx-distill",
    version="0.1.0",
    description="Knowledge distillation as a TFX component: teacher -> "
    "Distiller -> Evaluator -> Pusher.",
    python_requires=">=3.9,<3.11",
    packages=_packages(),
    package_dir=dict(_FOLDERS),
    # report.html's jinja2 templates and CSS, read with jinja2.PackageLoader.
    package_data={"distill_pipelines.report": ["templates/*.j2", "templates/*.css"]},
    install_requires=["tfx>=1.16,<1.17"],
    entry_points={"console_scripts": [
        "tfx-distill = distill_cli.main:main",
    ]},
)
