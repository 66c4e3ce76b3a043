"""Deployment-file tools for tests/deploy.rs, each the real implementation:

  render CHART VALUES_JSON   Helm's own Go template engine (helm-python-sdk binds the
                             Helm v4 SDK): prints {"manifests": {template: text}} or
                             {"error": message} when the chart refuses the values.
  lint CHART                 Helm's chart linter: prints its findings as JSON.
  validate FILE...           kubernetes-validate --strict against the Kubernetes 1.30
                             schemas (unknown fields are errors); exit status 1 on error.
  context ROOT DOCKERFILE    the files docker-py would send as the build context, after
                             .dockerignore: prints a JSON list of paths.
"""
import json
import os
import subprocess
import sys


def render(chart, values):
    import helm_python as helm
    from helm_python.errors import HelmRenderError, HelmValuesError

    with helm.Chart.load(chart) as c:
        try:
            out = c.render(json.loads(values), name="roomgate", namespace="roomgate")
        except (HelmRenderError, HelmValuesError) as e:
            return {"error": str(e)}
    return {"manifests": out}


def lint(chart):
    import helm_python as helm

    return helm.lint(chart)


def validate(files):
    tool = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    return subprocess.run(
        [tool, "--strict", "--quiet", "-k", "1.30.0", *files]
    ).returncode


def context(root, dockerfile):
    from docker.utils.build import exclude_paths

    with open(os.path.join(root, ".dockerignore")) as f:
        patterns = [
            line.strip() for line in f if line.strip() and not line.startswith("#")
        ]
    return sorted(exclude_paths(root, patterns, dockerfile=dockerfile))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "render":
        print(json.dumps(render(*args)))
    elif cmd == "lint":
        print(json.dumps(lint(*args)))
    elif cmd == "validate":
        sys.exit(validate(args))
    elif cmd == "context":
        print(json.dumps(context(*args)))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
