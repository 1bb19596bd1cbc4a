"""Checks runnerform's GitLab simulator with python-gitlab, an independent GitLab client.

Usage: python3 tests/sim_conformance.py URL ADMIN_TOKEN

URL and ADMIN_TOKEN are what `runnerform sim` prints on its first line. The simulator must be
fresh (seeded only). Exits 0 when every check passes; any failure raises and exits non-zero.
Driven by tests/cli/test_sim_python.rs.
"""

import sys
import warnings

import gitlab
import requests

CHECKS = 0


def check(condition, what):
    global CHECKS
    if not condition:
        raise AssertionError(what)
    CHECKS += 1


def expect_error(exc_type, code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        check(e.response_code == code, f"{fn.__name__}: expected {code}, got {e.response_code}")
        return e
    raise AssertionError(f"{fn.__name__}: expected {exc_type.__name__} {code}, got success")


def main(url, admin_token):
    # python-gitlab warns when a server's URLs differ from the one it was given; for the
    # simulator that would be a bug, so warnings are errors here.
    warnings.simplefilter("error")
    gl = gitlab.Gitlab(url, private_token=admin_token)
    gl.auth()
    check(gl.user.username == "root" and gl.user.is_admin, "GET /user is the admin")
    version, revision = gl.version()
    check(version.startswith("18.") and revision, f"version {version}")

    project = gl.projects.get("acme/app")
    group = gl.groups.get("acme")
    subgroup = gl.groups.get("acme/platform")
    check(project.path_with_namespace == "acme/app", "project by path")
    check(subgroup.parent_id == group.id, "subgroup parent")

    # Create with the new workflow, for a project and for a group.
    created = gl.user.runners.create(
        {
            "runner_type": "project_type",
            "project_id": project.id,
            "description": "py-project",
            "tag_list": ["docker", "linux"],
            "run_untagged": False,
        }
    )
    check(created.token.startswith("glrt-"), "project runner token prefix")
    check(created.token_expires_at is None, "no expiry by default")
    group_runner = gl.user.runners.create(
        {"runner_type": "group_type", "group_id": group.id, "description": "py-group", "tag_list": ["docker"]}
    )
    check(group_runner.token.startswith("glrt-t2_"), "group runner token prefix")
    expect_error(
        gitlab.GitlabCreateError,
        400,
        gl.user.runners.create,
        {"runner_type": "project_type", "project_id": project.id, "run_untagged": False},
    )
    expect_error(
        gitlab.GitlabCreateError,
        400,
        gl.user.runners.create,
        {"runner_type": "project_type", "project_id": 999999},
    )

    # Get and update: tag_list replaces, paused toggles.
    runner = gl.runners.get(created.id)
    check(runner.description == "py-project", "get by id")
    check(sorted(runner.tag_list) == ["docker", "linux"], f"tags {runner.tag_list}")
    check(runner.status == "never_contacted", f"status {runner.status}")
    runner.tag_list = ["gpu", "linux"]
    runner.paused = True
    runner.save()
    runner = gl.runners.get(created.id)
    check(sorted(runner.tag_list) == ["gpu", "linux"], f"tags replaced: {runner.tag_list}")
    check(runner.paused is True and runner.active is False, "paused")
    runner.paused = False
    runner.save()
    check(gl.runners.get(created.id).paused is False, "unpaused")

    # Verify records a manager; verify of a bad token fails.
    gl.runners.verify(created.token)
    managers = gl.http_get(f"/runners/{created.id}/managers")
    check(len(managers) == 1 and managers[0]["system_id"] == "<legacy>", f"managers {managers}")
    expect_error(gitlab.GitlabVerifyError, 403, gl.runners.verify, "glrt-not-a-token")

    # Enough instance runners for several pages.
    for i in range(7):
        gl.user.runners.create({"runner_type": "instance_type", "description": f"py-shared-{i}"})

    # Lists with filters.
    owned = gl.runners.list(get_all=True)
    check({r.id for r in owned} == {created.id, group_runner.id}, f"owned {[r.id for r in owned]}")
    check([r.id for r in gl.runners.list(type="group_type", get_all=True)] == [group_runner.id], "type filter")
    tagged = gl.runners_all.list(tag_list=["docker"], get_all=True)
    check([r.id for r in tagged] == [group_runner.id], f"tag filter {[r.id for r in tagged]}")
    shared = gl.runners.all(scope="shared", get_all=True)
    check(len(shared) == 7, f"scope=shared gives {len(shared)}")
    never = gl.runners_all.list(status="never_contacted", get_all=True)
    check(len(never) == 9, f"never_contacted gives {len(never)}")

    # Pagination: iterator and get_all over pages of 2.
    pages = gl.runners_all.list(per_page=2, iterator=True)
    check(pages.total == 9 and pages.total_pages == 5 and pages.per_page == 2, "pagination headers")
    ids = [r.id for r in pages]
    check(ids == sorted(ids) and len(set(ids)) == 9, f"iterator visits all once: {ids}")
    check(len(gl.runners_all.list(per_page=2, get_all=True)) == 9, "get_all")
    first = gl.runners_all.list(per_page=4, page=3)
    check(len(first) == 1, "last page")

    check(
        {r.id for r in project.runners.list(get_all=True)} == {created.id, group_runner.id} | {r.id for r in shared},
        "project runners include group and instance runners",
    )
    check(
        {r.id for r in subgroup.runners.list(get_all=True)} == {group_runner.id} | {r.id for r in shared},
        "subgroup runners include the parent's",
    )

    # Reset the token: the old one is rejected at once.
    reset = gl.http_post(f"/runners/{created.id}/reset_authentication_token")
    check(reset["token"].startswith("glrt-") and reset["token"] != created.token, "reset by id")
    expect_error(gitlab.GitlabVerifyError, 403, gl.runners.verify, created.token)
    gl.runners.verify(reset["token"])
    rotated = gl.http_post("/runners/reset_authentication_token", post_data={"token": reset["token"]})
    expect_error(gitlab.GitlabVerifyError, 403, gl.runners.verify, reset["token"])
    gl.runners.verify(rotated["token"])

    # Scopes: a create_runner-only token creates but cannot list.
    sim = requests.Session()
    user = sim.post(f"{url}/-/sim/users", json={"username": "py-maintainer"}).json()
    sim.post(f"{url}/-/sim/members", json={"user_id": user["id"], "project_id": project.id, "role": "maintainer"})
    token = sim.post(f"{url}/-/sim/users/{user['id']}/tokens", json={"scopes": ["create_runner"]}).json()["token"]
    limited = gitlab.Gitlab(url, private_token=token)
    mine = limited.http_post("/user/runners", post_data={"runner_type": "project_type", "project_id": project.id})
    check(mine["token"].startswith("glrt-t3_"), "create_runner scope creates")
    expect_error(gitlab.GitlabListError, 403, limited.runners.list)
    # ...and only where its user's role allows: a project Maintainer is no group Owner.
    denied = expect_error(
        gitlab.GitlabHttpError,
        403,
        limited.http_post,
        "/user/runners",
        post_data={"runner_type": "group_type", "group_id": group.id},
    )
    check("Insufficient permissions" in denied.error_message, f"403 reason: {denied.error_message}")

    # python-gitlab obeys Retry-After on 429.
    sim.post(f"{url}/-/sim/faults", json={"path": f"/api/v4/runners/{created.id}", "kind": "rate_limited", "retry_after": 1})
    check(gl.runners.get(created.id).id == created.id, "retried after 429")

    # Delete by id and by token; both are gone afterwards.
    gl.runners.delete(created.id)
    expect_error(gitlab.GitlabGetError, 404, gl.runners.get, created.id)
    gl.http_delete("/runners", post_data={"token": group_runner.token})
    expect_error(gitlab.GitlabGetError, 404, gl.runners.get, group_runner.id)
    expect_error(gitlab.GitlabVerifyError, 403, gl.runners.verify, group_runner.token)
    expect_error(gitlab.GitlabDeleteError, 404, gl.runners.delete, created.id)

    print(f"python-gitlab {gitlab.__version__}: {CHECKS} checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: sim_conformance.py URL ADMIN_TOKEN")
    main(sys.argv[1], sys.argv[2])
