"""A remote target (TARGET_API_URL): the real demo API started outside the runbook, deployed by
a TARGET_DEPLOY_CMD script that restarts it on the commit it is given. The code gates judge what
the service reports it runs (/health names its commit): a deploy command that "forgets" to
restart fails the served-commit gate, naming both commits."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runbook.context import build_context
from runbook.errors import GateFailed
from runbook.expectations.deployed import served_checkout
from runbook.expectations.week0.day5 import authorization_check
from runbook.settings import get_settings
from runbook.tasks.code import git_ops
from runbook.tasks.code.authorization import add_authorization
from runbook.tasks.target.api_server import free_port
from runbook.tasks.target.deploy import api, deploy
from runbook.tasks.target.upstream import UpstreamStandIn

SECRET = "remote-target-test-secret-of-32-bytes-or-more"

# the operator's deployment: check out the commit, restart the API on it
DEPLOY = '''#!{python}
import os, signal, subprocess, sys, time
from pathlib import Path

state = Path({state!r})
checkout = state / "checkout"
subprocess.run(["git", "-C", str(checkout), "checkout", "-q", "--detach", sys.argv[1]], check=True)
if {restart!r}:
    pid_file = state / "api.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            while True:
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
    env = {{"PATH": os.environ.get("PATH", ""), "DATABASE_URL": {database_url!r},
           "AUTH_JWT_SECRET": {secret!r}, "PYTHONPATH": str(checkout / "backend"), **{providers!r}}}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                             "--port", "{port}"], cwd=checkout / "backend", env=env,
                            start_new_session=True, stdout=open(state / "api.log", "ab"),
                            stderr=subprocess.STDOUT)
    pid_file.write_text(str(proc.pid))
'''


def deploy_script(path: Path, state: Path, port: int, database_url: str, restart: bool,
                  providers: dict | None = None) -> Path:
    path.write_text(DEPLOY.format(python=sys.executable, state=str(state), restart=restart, port=port,
                                  database_url=database_url, secret=SECRET, providers=providers or {}))
    path.chmod(0o755)
    return path


@pytest.mark.gate_fails("target:served-commit")
def test_remote_deploy_command_restarts_the_service_and_a_forgetful_one_fails_the_gate(
        target, tmp_path, monkeypatch):
    head = git_ops.head(target.repo)
    state = tmp_path / "remote"
    state.mkdir()
    git_ops.worktree(target.repo, state / "checkout", head)
    port = free_port()
    upstream = UpstreamStandIn().start()        # the market data the remote service calls
    providers = upstream.provider_settings()
    restarting = deploy_script(tmp_path / "deploy.py", state, port, target.staging_url, restart=True,
                               providers=providers)
    forgetful = deploy_script(tmp_path / "deploy-forgetful.py", state, port, target.staging_url, restart=False,
                              providers=providers)
    subprocess.run([str(restarting), head], check=True)           # started outside the runbook
    monkeypatch.setenv("TARGET_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TARGET_JWT_SECRET", SECRET)
    monkeypatch.setenv("TARGET_DEPLOY_CMD", str(restarting))
    get_settings.cache_clear()
    try:
        ctx = build_context("test-remote", "staging", uuid.uuid4().hex)
        assert not api(ctx).managed
        assert served_checkout(ctx) == ctx.deploy_dir             # waits for it, then reads /health
        assert api(ctx).served_commit() == head

        # a code update, deployed by the command: the service restarts on it
        change = git_ops.worktree(target.repo, tmp_path / "change", head)
        add_authorization(change)
        new = git_ops.commit_all(change, "test: authorization")
        deploy(ctx, new)
        assert api(ctx).served_commit() == new
        assert served_checkout(ctx) == ctx.deploy_dir
        assert authorization_check(ctx).passed                     # the remote service, probed

        # a deploy command that checks the code out but never restarts the service
        monkeypatch.setenv("TARGET_DEPLOY_CMD", str(forgetful))
        get_settings.cache_clear()
        ctx = build_context("test-remote", "staging", uuid.uuid4().hex)
        deploy(ctx, head)
        assert git_ops.head(state / "checkout") == head            # the code is there ...
        with pytest.raises(GateFailed) as failed:                  # ... but not what runs
            served_checkout(ctx)
        result = failed.value.result
        assert result.name == "target:served-commit" and not result.passed
        assert result.sample[0]["problem"] == f"the service runs {new}, the environment deployed {head}"
    finally:
        upstream.stop()
        pid = int((state / "api.pid").read_text())
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
                time.sleep(0.1)
            except ProcessLookupError:
                break
        get_settings.cache_clear()


def test_a_failing_deploy_command_fails_the_deploy_naming_its_exit(target, tmp_path, monkeypatch):
    script = tmp_path / "deploy.sh"
    script.write_text("#!/bin/sh\necho 'deploy to postgresql://ops:hunter2secret@db failed' >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("TARGET_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TARGET_DEPLOY_CMD", str(script))
    get_settings.cache_clear()
    ctx = build_context("test-remote", "staging", uuid.uuid4().hex)
    head = git_ops.head(target.repo)
    with pytest.raises(Exception, match="TARGET_DEPLOY_CMD exited 3 deploying") as failed:
        deploy(ctx, head)
    assert "hunter2secret" not in str(failed.value) and "ops:***@db" in str(failed.value)
    get_settings.cache_clear()
