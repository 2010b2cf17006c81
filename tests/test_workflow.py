"""The publishing workflow runs the README's two commands: the build (and deploys its site) on
main, with the chapters' verdicts at other seeds, and the tests on pull requests."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> tuple[str, str]:
    """The build and test commands of the README's "Two commands" section."""
    section = (REPO / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]
    build, test = blocks[:2]
    return build, test


def test_the_workflow_runs_the_readme_commands_and_deploys_the_site():
    build, test = readme_commands()
    assert (build, test) == ("make book", "make test")
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith(test)
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    jobs = workflow["jobs"]
    runs = {name: [s.get("run") for s in job["steps"] if "run" in s] for name, job in jobs.items()}
    assert runs["test"] == [test] and "pull_request" in jobs["test"]["if"]
    # the published pages set each chapter's verdicts beside those at seeds 1 and 2
    assert runs["build"] == [build, "make seeds"] and "!= 'pull_request'" in jobs["build"]["if"]
    assert "\nseeds:" in (REPO / "Makefile").read_text()
    uses = {s.get("uses", "").split("@")[0]: s for s in jobs["build"]["steps"]}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert uses["actions/cache/restore"]["with"]["path"] == "~/.cache/scaling_utils"
    assert uses["actions/cache/save"]["if"] == "always()"  # a failed build still keeps its cache
    assert jobs["deploy"]["needs"] == "build"
    assert jobs["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")
