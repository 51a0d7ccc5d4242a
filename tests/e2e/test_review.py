"""The review desk against real git and real containers: diff, approve, merge, follow-up, discard."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.kilod_testing import GREETER, README, ApiError, DaemonProcess, git, make_repo

STORY = "".join(f"line {i} of a story that is long enough to be recognised when it moves\n" for i in range(12))


@pytest.fixture
def rich_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "rich", {
        "greeter.py": GREETER, "README.md": README, "story.txt": STORY, "remove-me.txt": "bye\n",
        "logo.bin": "\0\1\2\3original", "tool.sh": "#!/bin/sh\necho tool\n", ".gitignore": "build/\n",
    })
    return repo


def run_card(daemon: DaemonProcess, repo: Path, model: str, prompt: str = "do it", **extra: Any) -> dict[str, Any]:
    card = daemon.request("POST", "/v1/cards", {"prompt": prompt, "repo": str(repo), "models": [model], **extra})
    return daemon.wait_state(card["attempts"][0]["id"], "review")


def git_reference_diff(repo: Path, worktree: Path, base: str, *options: str) -> str:
    """What plain git says, staging everything into a scratch index (the test's own reference)."""
    git_dir = repo / ".git" / "worktrees" / worktree.name
    env = {**os.environ, "GIT_INDEX_FILE": str(worktree.parent / f"{worktree.name}.reference-index")}
    base_args = ["git", f"--git-dir={git_dir}", f"--work-tree={worktree}"]
    subprocess.run([*base_args, "read-tree", base], check=True, env=env)
    subprocess.run([*base_args, "add", "-A"], check=True, env=env, cwd=worktree)
    out = subprocess.run([*base_args, "diff", "--cached", "-M", "--no-color", *options, base], check=True,
                         env=env, capture_output=True, text=True).stdout
    os.unlink(env["GIT_INDEX_FILE"])
    return out


def test_diff_json_and_text_agree_with_git(daemon: DaemonProcess, rich_repo: Path) -> None:
    attempt = run_card(daemon, rich_repo, "scripted/changes")
    worktree = Path(attempt["worktree"])
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    by_path = {f["path"]: f for f in diff["files"]}

    assert by_path["greeter.py"]["status"] == "modified"
    assert by_path["chapter-one.txt"]["status"] == "renamed"
    assert by_path["chapter-one.txt"]["old_path"] == "story.txt"
    assert by_path["remove-me.txt"]["status"] == "deleted"
    assert by_path["logo.bin"]["binary"] is True and by_path["logo.bin"]["status"] == "modified"
    assert by_path["fresh.txt"]["status"] == "added"  # untracked files are part of the diff
    assert by_path["tool.sh"]["new_mode"] == "100755" and "made executable" in by_path["tool.sh"]["risks"]
    assert not any(p.startswith("build/") for p in by_path)  # .gitignore is honoured
    hunk_lines = by_path["greeter.py"]["hunks"][0]["lines"]
    assert {"kind": "delete", "old": 2, "new": None, "text": '    return "Hello " + name'} in hunk_lines
    assert {"kind": "add", "old": None, "new": 2, "text": '    return "Hi " + name'} in hunk_lines

    numstat = git_reference_diff(rich_repo, worktree, attempt_base(daemon, attempt), "--numstat")
    expected = {}
    for line in numstat.splitlines():
        added, deleted, path = line.split("\t")
        path = path.split(" => ")[-1].strip("{}")
        expected[path] = (None if added == "-" else int(added), None if deleted == "-" else int(deleted))
    assert {p: (None if f["binary"] else f["additions"], None if f["binary"] else f["deletions"])
            for p, f in by_path.items()} == expected

    text = daemon_text(daemon, attempt["id"])
    reference = git_reference_diff(rich_repo, worktree, attempt_base(daemon, attempt), "--full-index")
    assert text == reference
    assert diff["additions"] == sum(a or 0 for a, _ in expected.values())


def shown_tree(daemon: DaemonProcess, attempt_id: str) -> str:
    """The tree of the diff a reviewer is shown: what approve must name."""
    return str(daemon.request("GET", f"/v1/attempts/{attempt_id}/diff")["tree"])


def land(daemon: DaemonProcess, attempt_id: str, **body: Any) -> dict[str, Any]:
    """Approve (merge=True: and merge) naming the tree of the diff just shown, as the CLI and the page do."""
    result: dict[str, Any] = daemon.request("POST", f"/v1/attempts/{attempt_id}/approve",
                                            {**body, "tree": shown_tree(daemon, attempt_id)})
    return result


def attempt_base(daemon: DaemonProcess, attempt: dict[str, Any]) -> str:
    return str(daemon.request("GET", f"/v1/cards/{attempt['card_id']}")["base_commit"])


def daemon_text(daemon: DaemonProcess, attempt_id: str) -> str:
    from tests.kilod_testing import UnixHTTPConnection

    connection = UnixHTTPConnection(daemon.socket)
    connection.request("GET", f"/v1/attempts/{attempt_id}/diff?format=text")
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 200
    return body


def tree_files(repo: Path, rev: str) -> dict[str, str]:
    listing = git(repo, "ls-tree", "-r", rev)
    return {line.split("\t", 1)[1]: line.split()[2] for line in listing.splitlines()}


def test_approve_commits_exactly_the_reviewed_content_and_touches_nothing_else(
    daemon: DaemonProcess, rich_repo: Path
) -> None:
    git(rich_repo, "branch", "feature")
    refs_before = git(rich_repo, "for-each-ref", "--format=%(refname) %(objectname)")
    attempt = run_card(daemon, rich_repo, "scripted/changes")
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")

    result = daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"tree": diff["tree"]})
    commit = result["commit"]
    assert result["merge"] is None
    assert git(rich_repo, "rev-parse", f"{commit}^{{tree}}").strip() == diff["tree"]
    assert git(rich_repo, "rev-parse", attempt["branch"]).strip() == commit
    assert git(rich_repo, "rev-parse", f"{commit}^").strip() == attempt_base(daemon, attempt)
    files = tree_files(rich_repo, commit)
    assert "fresh.txt" in files and "remove-me.txt" not in files and "build/out.log" not in files
    assert git(rich_repo, "show", f"{commit}:chapter-one.txt").endswith("The end.\n")
    message = git(rich_repo, "log", "-1", "--format=%B", commit)
    assert message.startswith("do it\n\nchanged one of everything") and f"kilod-attempt: {attempt['id']}" in message

    # the user's own checkout and every other ref are as they were
    assert git(rich_repo, "status", "--porcelain") == ""
    refs_after = dict(line.split() for line in git(rich_repo, "for-each-ref",
                                                     "--format=%(refname) %(objectname)").splitlines())
    for line in refs_before.splitlines():
        name, sha = line.split()
        assert refs_after[name] == sha
    approved = daemon.attempt(attempt["id"])
    assert approved["state"] == "approved" and approved["landed_commit"] == commit
    assert not Path(attempt["worktree"]).exists()
    assert daemon.request("GET", f"/v1/cards/{attempt['card_id']}")["column"] == "done"


def test_approve_refuses_a_tree_that_changed_since_review(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    (Path(attempt["worktree"]) / "HELLO.md").write_text("changed after review\n")
    with pytest.raises(ApiError) as caught:
        daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"tree": diff["tree"]})
    assert caught.value.status == 409 and "review it again" in caught.value.body["error"]["message"]
    assert daemon.attempt(attempt["id"])["state"] == "review"


def test_merge_fast_forwards_and_updates_a_clean_checkout(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    result = land(daemon, attempt["id"], merge=True)
    assert result["merge"]["fast_forward"] is True
    assert result["merge"]["worktree_updated"] == str(repo.resolve())
    assert git(repo, "rev-parse", "main").strip() == result["commit"]
    assert (repo / "HELLO.md").exists() and git(repo, "status", "--porcelain") == ""


def test_merge_makes_a_merge_commit_when_the_base_moved(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    (repo / "other.txt").write_text("the user kept working\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "meanwhile")
    moved = git(repo, "rev-parse", "main").strip()

    result = land(daemon, attempt["id"], merge=True)
    head = git(repo, "rev-parse", "main").strip()
    assert result["merge"]["fast_forward"] is False and head == result["merge"]["head"]
    assert git(repo, "rev-parse", f"{head}^1").strip() == moved
    assert git(repo, "rev-parse", f"{head}^2").strip() == result["commit"]
    assert set(tree_files(repo, head)) >= {"HELLO.md", "other.txt", "greeter.py"}
    assert (repo / "HELLO.md").exists() and git(repo, "status", "--porcelain") == ""


def test_merge_does_not_touch_a_dirty_checkout_only_the_ref(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    (repo / "README.md").write_text("uncommitted work of the user\n")
    result = land(daemon, attempt["id"], merge=True)
    assert result["merge"]["worktree_updated"] is None
    assert result["merge"]["checkout"] == str(repo.resolve())
    assert "has local changes" in result["merge"]["note"]
    assert git(repo, "rev-parse", "main").strip() == result["commit"]
    assert (repo / "README.md").read_text() == "uncommitted work of the user\n"
    assert not (repo / "HELLO.md").exists()


def test_merge_conflict_is_409_with_paths_and_changes_nothing(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/quick")  # rewrites greeter.py
    (repo / "greeter.py").write_text("def greet(name):\n    return 'Howdy ' + name\n")
    git(repo, "commit", "-q", "-am", "conflicting change")
    refs_before = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    worktree_file = (Path(attempt["worktree"]) / "greeter.py").read_text()

    with pytest.raises(ApiError) as caught:
        land(daemon, attempt["id"], merge=True)
    assert caught.value.status == 409
    assert caught.value.body["error"]["paths"] == ["greeter.py"]
    assert "greeter.py" in caught.value.body["error"]["message"]
    assert git(repo, "for-each-ref", "--format=%(refname) %(objectname)") == refs_before
    assert git(repo, "status", "--porcelain") == ""
    assert daemon.attempt(attempt["id"])["state"] == "review"
    assert (Path(attempt["worktree"]) / "greeter.py").read_text() == worktree_file


def test_follow_up_resumes_with_the_conversation_comments_and_human_change(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/reviewed")
    attempt_id = attempt["id"]
    comment = daemon.request("POST", f"/v1/attempts/{attempt_id}/comments",
                             {"path": "notes.txt", "line": 2, "text": "make the second line louder"})
    assert comment["sent_at"] is None
    (Path(attempt["worktree"]) / "human.txt").write_text("I fixed the import by hand\n")

    seq_before = daemon.events(attempt_id)[-1]["seq"]
    accepted = daemon.request("POST", f"/v1/attempts/{attempt_id}/messages", {"text": "carry on, please"})
    assert accepted["state"] == "running" and accepted["follow_from_seq"] == seq_before
    done = daemon.wait_state(attempt_id, "review")
    assert done["summary"] == "second pass"
    told = (Path(done["worktree"]) / "followup.txt").read_text()
    assert told.startswith("ROLES: system user assistant tool assistant tool user\n")
    assert "carry on, please" in told
    assert "- notes.txt:2: make the second line louder" in told
    assert "+I fixed the import by hand" in told and "human.txt" in told
    assert all(c["sent_at"] for c in daemon.request("GET", f"/v1/attempts/{attempt_id}/comments")["comments"])
    states = [e["payload"]["to"] for e in daemon.events(attempt_id) if e["kind"] == "state"]
    assert states == ["queued", "starting", "running", "review", "running", "review"]


def test_planted_hooks_filters_fsmonitor_git_and_symlinks_never_run_or_leak(
    daemon: DaemonProcess, repo: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST-ONLY-SECRET-1234\n")
    marker = tmp_path / "planted-command-ran"
    # the user's own config defines a driver under the name the agent will use
    for key in ("filter.kilodevil.clean", "filter.kilodevil.smudge", "diff.kilodevil.textconv",
                "diff.kilodevil.command", "merge.kilodevil.driver"):
        git(repo, "config", key, f"touch {marker}")
    attempt = run_card(daemon, repo, "scripted/planter", prompt=f"{secret} {marker}")
    worktree = Path(attempt["worktree"])
    assert (worktree / "leak").is_symlink()
    # and, as if the agent had managed it, the worktree's .git pointer replaced by a hostile folder
    (worktree / ".git").unlink()
    (worktree / ".git" / "hooks").mkdir(parents=True)
    (worktree / ".git" / "config").write_text(f"[core]\n\tfsmonitor = touch {marker}\n\thooksPath = .githooks\n")
    for hook in ("pre-commit", "post-commit", "post-checkout", "reference-transaction"):
        (worktree / ".git" / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (worktree / ".git" / "hooks" / hook).chmod(0o755)

    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff?format=both")
    assert "HOST-ONLY-SECRET" not in diff["text"]
    by_path = {f["path"]: f for f in diff["files"]}
    assert by_path["leak"]["new_mode"] == "120000" and "symlink" in by_path["leak"]["risks"]
    assert "git configuration (.git*)" in by_path[".gitattributes"]["risks"]
    assert diff["nested_repositories"] == ["nested"] and "nested repository" in diff["risks"]
    assert ".git" not in by_path

    result = land(daemon, attempt["id"], merge=True)
    committed = tree_files(repo, result["commit"])
    assert "HOST-ONLY-SECRET" not in git(repo, "show", f"{result['commit']}:leak")
    assert git(repo, "cat-file", "-p", f"{result['commit']}:leak") == str(secret)
    assert not any(path.startswith("nested/") for path in committed)
    assert (repo / ".gitattributes").exists()  # the merge updated the user's clean checkout

    # a second card, discarded instead of approved
    other = run_card(daemon, repo, "scripted/planter", prompt=f"{secret} {marker}")
    daemon.request("POST", f"/v1/attempts/{other['id']}/discard")
    assert not Path(other["worktree"]).exists()
    assert not marker.exists(), "a planted command ran on the host"


def test_discard_removes_container_worktree_and_branch_and_is_idempotent(
    daemon: DaemonProcess, repo: Path
) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": f"kilod.attempt={attempt['id']}"})
    for _ in range(2):
        discarded = daemon.request("POST", f"/v1/attempts/{attempt['id']}/discard")
        assert discarded["state"] == "discarded"
        assert client.containers.list(all=True, filters={"label": f"kilod.attempt={attempt['id']}"}) == []
        assert not Path(attempt["worktree"]).exists()
        assert git(repo, "branch", "--list", attempt["branch"]) == ""
        assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    # discarded only: an outcome to see (Closed), not Done
    assert daemon.request("GET", f"/v1/cards/{attempt['card_id']}")["column"] == "closed"


def test_approving_one_attempt_discards_its_siblings(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "two", "repo": str(repo),
                                                "models": ["scripted/hello", "scripted/steady"]})
    first, second = (a["id"] for a in card["attempts"])
    daemon.wait_state(first, "review")
    daemon.wait_state(second, "review")
    result = land(daemon, first)
    assert result["discarded"] == [second]
    assert daemon.attempt(second)["state"] == "discarded"
    assert git(repo, "branch", "--list", f"kilod/{second}") == ""


def test_cancel_keeps_the_worktree_and_retry_starts_afresh(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "slow", "repo": str(repo),
                                                "models": ["scripted/resumable"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_state(attempt_id, "running")
    cancelled = daemon.request("POST", f"/v1/attempts/{attempt_id}/cancel")
    assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by a person"
    assert Path(cancelled["worktree"]).is_dir()
    with pytest.raises(ApiError) as caught:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/cancel")
    assert caught.value.status == 409

    retried = daemon.request("POST", f"/v1/attempts/{attempt_id}/retry")
    assert retried["id"] == f"{card['id']}-2" and retried["model"] == "scripted/resumable"
    done = daemon.wait_state(retried["id"], "review")
    assert (Path(done["worktree"]) / "notes" / "all.txt").read_text() == "one\ntwo\nthree\n"
    assert daemon.attempt(attempt_id)["state"] == "cancelled"


def test_review_bad_input_is_a_clear_4xx_and_changes_nothing(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    attempt_id = attempt["id"]
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/v1/attempts/nope-1/approve", {}, 404, "no attempt"),
        ("POST", "/v1/attempts/nope-1/discard", {}, 404, "no attempt"),
        ("GET", "/v1/attempts/nope-1/diff", None, 404, "no attempt"),
        ("POST", f"/v1/attempts/{attempt_id}/comments", {"path": "HELLO.md", "line": 99, "text": "x"}, 400,
         "line 99 of HELLO.md is not in the diff"),
        ("POST", f"/v1/attempts/{attempt_id}/comments", {"path": "greeter.py", "line": 1, "text": "x"}, 400,
         "greeter.py is not in this attempt's diff"),
        ("POST", f"/v1/attempts/{attempt_id}/comments", {"path": "HELLO.md", "line": 0, "text": "x"}, 400, "line"),
        ("POST", f"/v1/attempts/{attempt_id}/messages", {"text": ""}, 400, "text"),
        ("POST", f"/v1/attempts/{attempt_id}/approve", {"merge": "yes please"}, 400, "merge"),
        ("POST", f"/v1/attempts/{attempt_id}/approve", {"merge": True}, 400, "tree"),
        ("POST", f"/v1/attempts/{attempt_id}/cancel", {}, 409, "can be cancelled; "),
    ]
    for method, path, body, status, words in cases:
        with pytest.raises(ApiError) as caught:
            daemon.request(method, path, body)
        assert caught.value.status == status, (path, caught.value.body)
        assert words.lower() in caught.value.body["error"]["message"].lower(), (path, caught.value.body)
    assert daemon.request("GET", f"/v1/attempts/{attempt_id}/comments") == {"comments": []}
    assert daemon.attempt(attempt_id) == attempt

    tree = shown_tree(daemon, attempt_id)
    daemon.request("POST", f"/v1/attempts/{attempt_id}/discard")
    with pytest.raises(ApiError) as caught:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/approve", {"tree": tree})
    assert caught.value.status == 409 and "discarded" in caught.value.body["error"]["message"]


def test_an_approve_interrupted_after_moving_refs_completes_without_a_second_commit(
    daemon: DaemonProcess, repo: Path
) -> None:
    attempt = run_card(daemon, repo, "scripted/hello")
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    base = attempt_base(daemon, attempt)
    # what approve --merge had done when the daemon died: commit on the branch, fast-forward main
    commit = git(repo, "commit-tree", diff["tree"], "-p", base, "-m", "committed before the crash").strip()
    git(repo, "update-ref", f"refs/heads/{attempt['branch']}", commit, base)
    git(repo, "update-ref", "refs/heads/main", commit, base)

    result = land(daemon, attempt["id"], merge=True)
    assert result["commit"] == commit
    assert git(repo, "rev-parse", attempt["branch"]).strip() == commit
    assert git(repo, "rev-parse", "main").strip() == commit
    assert daemon.attempt(attempt["id"])["state"] == "approved"
