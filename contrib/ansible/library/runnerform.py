#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module for runnerform: converge one host of a fleet to its KDL file.

It exists so that fleets run on Ansible get what Ansible users expect and what a
`command` task cannot give: `--check` that only plans, `--diff` that shows the config.toml
diff (tokens masked), and `changed` taken from the plan, never guessed from human text.
It talks to runnerform only through its machine-readable outputs (`plan --json`,
`apply --json`, exit codes, saved plans) and is self-contained (standard library and AnsibleModule), so it can
be dropped into a playbook's `library/` or a directory on ANSIBLE_LIBRARY.
"""

DOCUMENTATION = r"""
---
module: runnerform
short_description: Converge a GitLab Runner host to a runnerform KDL file
description:
  - Runs runnerform on the managed host to converge gitlab-runner's C(config.toml),
    GitLab's runners and the gitlab-runner service to a KDL file, usually a fleet file
    with one C(host) block per host.
  - It plans first (C(runnerform plan --json --out PLANFILE)) and, only when changes are
    pending, applies exactly that saved plan (C(runnerform apply PLANFILE --json)), which
    runnerform refuses if anything changed in between; C(changed) is what that apply's
    summary says it changed.
  - In check mode it only plans; nothing changes on GitLab, in C(config.toml) or in the
    service, and C(changed) says whether a normal run would change anything.
  - Secrets (the GitLab access token, runner tokens) reach runnerform through the task's
    C(environment) keyword, as the KDL file's C(env=) references name them. The module
    has no parameter for them and never puts them on a command line; runnerform masks
    every token in what it prints, and the module masks token-shaped text again before
    returning it.
version_added: "0.1.0"
author:
  - runnerform contributors
requirements:
  - the C(runnerform) binary on the managed host
  - ansible-core 2.16 or newer
attributes:
  check_mode:
    support: full
    description: Plans only; C(changed) is whether changes are pending.
  diff_mode:
    support: full
    description: >-
      The config.toml diff with tokens masked, the service definition diff, and one line
      per runner that changes (GitLab actions included).
  platform:
    platforms: posix
options:
  file:
    description:
      - The KDL file (or directory of KDL files) on the managed host that declares the
        runners, passed as C(-f).
    type: path
    required: true
  host:
    description:
      - The C(host "NAME") block of a fleet file to apply, passed as C(--host).
      - Pass C({{ inventory_hostname }}) to select each host's block by its inventory name.
        When omitted, runnerform uses C(RUNNERFORM_HOST) or the machine's hostname.
    type: str
  config_toml:
    description:
      - gitlab-runner's config.toml, overriding the path the KDL file names
        (C(--config-toml)).
    type: path
  binary:
    description:
      - The runnerform executable, a path or a name looked up on the managed host's PATH.
    type: str
    default: runnerform
  targets:
    description:
      - Limit the plan to these runners (C(--target), repeated). The name of a C(count=)
        runner selects all its replicas.
    type: list
    elements: str
    default: []
  offline:
    description:
      - Plan and apply against config.toml and the service only, without calling GitLab
        (C(--offline)). Actions that need GitLab are left pending; they do not count as
        changes this run can make.
    type: bool
    default: false
  wait_online:
    description:
      - After applying, wait up to this long (C(90s), C(5m), or seconds) until every
        declared runner is online in GitLab with a runner manager for this host, and fail
        naming those that are not (C(apply --wait-online)). Checked on every run, also
        when nothing changes. Not with I(offline).
    type: str
  concurrency:
    description:
      - How many requests to GitLab may be in flight at once (C(--concurrency)); runnerform's
        default when omitted.
    type: int
notes:
  - Exit codes and JSON outputs of runnerform are documented in its README; the plan JSON
    follows C(schemas/plan.schema.json).
  - The saved plan is written to a temporary directory and removed afterwards. It holds no
    token.
  - runnerform's README (section "Fleets on Ansible") has a complete playbook for a
    three-host fleet.
  - Ansible itself hands C(environment) values to the host inside the shell command that
    starts the module, so they are on that shell's command line while the task runs and in
    C(-vvv) output. Where that matters, let the KDL file read the token from a file
    (C(token file="...")) put there by a task with C(no_log=true) and mode C(0600).
"""

EXAMPLES = r"""
- name: Converge GitLab runners on every host of the fleet
  runnerform:
    file: /etc/runnerform/fleet.kdl
    host: "{{ inventory_hostname }}"
  environment:
    GITLAB_TOKEN: "{{ gitlab_runner_admin_token }}"

- name: Only this host's config.toml and service, without GitLab
  runnerform:
    file: /etc/runnerform/fleet.kdl
    host: "{{ inventory_hostname }}"
    offline: true

- name: Apply two runners and wait until they are online
  runnerform:
    file: /etc/runnerform/fleet.kdl
    host: "{{ inventory_hostname }}"
    config_toml: /srv/gitlab-runner/config.toml
    targets: [docker, release]
    wait_online: 2m
  environment:
    GITLAB_TOKEN: "{{ gitlab_runner_admin_token }}"

- name: Drift check (run with --check --diff); fails nothing, reports changed on drift
  runnerform:
    file: /etc/runnerform/fleet.kdl
    host: "{{ inventory_hostname }}"
  environment:
    GITLAB_TOKEN: "{{ gitlab_runner_read_token }}"
  check_mode: true
  register: drift
"""

RETURN = r"""
changed:
  description:
    - In check mode, whether a normal run would change anything (the plan's
      C(changes_pending), less actions an offline run cannot carry out).
    - Otherwise, whether the apply changed config.toml, the ownership record, GitLab or
      the service, as the summary of C(runnerform apply --json) says; also when apply
      failed midway (or its I(wait_online) check failed) after changing something.
  returned: always
  type: bool
plan:
  description:
    - The plan as C(runnerform plan --json) prints it (tokens masked), described by
      runnerform's C(schemas/plan.schema.json).
  returned: when runnerform could plan (also when apply then failed)
  type: dict
  sample:
    changes_pending: true
    config_toml: /etc/gitlab-runner/config.toml
    runners:
      - name: docker
        action: create
        reason: declared, not in config.toml and not registered by runnerform
        pending: false
        id: null
        changes: []
    summary: {create: 1, adopt: 0, update: 0, replace: 0, recreate: 0, rotate: 0,
              delete: 0, unmanaged: 0, pending: 0}
    diff: "--- /etc/gitlab-runner/config.toml\n+++ /etc/gitlab-runner/config.toml (planned)\n..."
applied:
  description: Whether C(runnerform apply) ran (changes pending, or I(wait_online) given).
  returned: always
  type: bool
apply_output:
  description: The steps C(runnerform apply) carried out, one line each as it prints them
    for people (and, with I(wait_online), each runner that came online); tokens masked.
  returned: when apply ran
  type: list
  elements: str
  sample:
    - "  [1/3] docker: register (GitLab id 1)"
    - "  [2/3] docker: write the entry"
rc:
  description:
    - runnerform's exit code when it failed (a successful run returns no C(rc), since Ansible
      reads a non-zero one as a failure and C(plan --detailed-exitcode) exits 2 on changes).
  returned: failure
  type: int
diff:
  description: In diff mode, the change as a prepared text (config.toml diff, service
    definition diff, one line per changing runner).
  returned: when diff mode is on
  type: dict
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

# The argument spec, kept beside DOCUMENTATION so a test can compare the two.
ARGUMENT_SPEC = dict(
    file=dict(type="path", required=True),
    host=dict(type="str"),
    config_toml=dict(type="path"),
    binary=dict(type="str", default="runnerform"),
    targets=dict(type="list", elements="str", default=[]),
    offline=dict(type="bool", default=False),
    wait_online=dict(type="str"),
    concurrency=dict(type="int"),
)

# The same prefixes runnerform masks; a second mask here costs nothing and keeps a token
# out of Ansible's output even if a future runnerform printed one by mistake.
TOKEN_PREFIXES = ("glrt-", "glrtr-", "glpat-", "GR1348941", "glcbt-", "gldt-")
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_.\-])("
    + "|".join(re.escape(p) for p in TOKEN_PREFIXES)
    + r")([A-Za-z0-9_.\-]+)"
)

PLAN_CHANGE_ACTIONS = ("create", "adopt", "update", "replace", "recreate", "rotate", "delete")


def mask(value):
    """Masks token-shaped text in strings, lists and dicts, keeping prefixes and length."""
    if isinstance(value, str):
        return _TOKEN.sub(lambda m: m.group(1) + "*" * len(m.group(2)), value)
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, dict):
        return dict((k, mask(v)) for k, v in value.items())
    return value


def service_changes(plan):
    service = plan.get("service") or {}
    return bool(service.get("steps"))


def would_change(plan):
    """Whether applying this plan changes anything.

    `changes_pending` counts actions an offline plan leaves for an online apply; runnerform
    does not carry those out offline, so they are not changes this run makes.
    """
    if not plan.get("changes_pending"):
        return False
    if not plan.get("offline"):
        return True
    if plan.get("diff") or plan.get("globals") or service_changes(plan):
        return True
    return any(
        r.get("action") in PLAN_CHANGE_ACTIONS and not r.get("pending")
        for r in plan.get("runners", [])
    )


# The symbols of runnerform's own plan view, so both read alike.
SYMBOLS = dict(create="+", adopt=">", update="~", rotate="~", replace="-/+", recreate="-/+",
               delete="-", unmanaged="?")


def describe_change(change):
    side = " (GitLab)" if change.get("side") == "gitlab" else ""
    path, old, new = change.get("path"), change.get("old"), change.get("new")
    if old is None and new is None:
        return "~ %s%s" % (path, side)
    if old is None:
        return "+ %s: %s%s" % (path, new, side)
    if new is None:
        return "- %s: %s%s" % (path, old, side)
    return "~ %s: %s -> %s%s" % (path, old, new, side)


def summary_lines(plan):
    """One line per runner that changes, then the service, as a reviewer reads them."""
    lines = []
    for r in plan.get("runners", []):
        action = r.get("action")
        if action in (None, "no_change"):
            continue
        line = "%s %s: %s" % (SYMBOLS.get(action, "~"), r.get("name"), action)
        notes = []
        if r.get("previous_name"):
            notes.append("was %s" % r["previous_name"])
        if r.get("id") is not None:
            notes.append("GitLab id %s" % r["id"])
        if r.get("pending"):
            notes.append("needs GitLab, left for an online run")
        if notes:
            line += " [%s]" % ", ".join(notes)
        if r.get("reason"):
            line += " (%s)" % r["reason"]
        changes = r.get("changes") or []
        if changes:
            line += ": " + "; ".join(describe_change(c) for c in changes)
        lines.append(line)
    service = plan.get("service") or {}
    if service.get("steps"):
        lines.append(
            "~ service %s: %s (%s)"
            % (service.get("name"), ", ".join(service["steps"]), service.get("reason", ""))
        )
    return lines


def prepared_diff(plan):
    parts = []
    if plan.get("diff"):
        parts.append(plan["diff"].rstrip("\n"))
    service = plan.get("service") or {}
    if service.get("diff"):
        parts.append(service["diff"].rstrip("\n"))
    lines = summary_lines(plan)
    if lines:
        parts.append("\n".join(lines))
    if not parts:
        return ""
    return "\n".join(parts) + "\n"


class Runnerform(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        binary = p["binary"]
        if os.sep in binary:
            binary = os.path.expanduser(binary)
            if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
                module.fail_json(msg="runnerform binary %s is not an executable file" % binary)
        else:
            binary = module.get_bin_path(binary, required=True)
        self.base = [binary, "-f", p["file"]]
        if p["host"]:
            self.base += ["--host", p["host"]]

    def run(self, args):
        # NO_COLOR keeps escape codes out of the diagnostics and lines Ansible shows.
        rc, out, err = self.module.run_command(
            args, environ_update={"NO_COLOR": "1"}, check_rc=False
        )
        return rc, mask(out), mask(err)

    def fail(self, what, rc, out, err, **extra):
        diagnostic = err.strip() or out.strip() or "no output"
        self.module.fail_json(
            msg="runnerform %s failed (exit %d):\n%s" % (what, rc, diagnostic),
            rc=rc,
            stderr=err,
            stdout=out,
            **extra
        )

    def _plan(self, out_file=None):
        """Runs plan; returns (rc, stdout, stderr, plan), the plan None with a reason in
        stderr when it failed."""
        p = self.module.params
        args = list(self.base)
        if p["config_toml"]:
            args += ["--config-toml", p["config_toml"]]
        args += ["plan", "--json", "--detailed-exitcode"]
        if out_file:
            args += ["--out", out_file]
        if p["offline"]:
            args.append("--offline")
        for target in p["targets"]:
            args += ["--target", target]
        if p["concurrency"] is not None:
            args += ["--concurrency", str(p["concurrency"])]
        rc, out, err = self.run(args)
        # --detailed-exitcode: 0 nothing pending, 2 changes pending, anything else an error.
        if rc not in (0, 2):
            return rc, out, err, None
        try:
            plan = self.module.from_json(out)
        except ValueError as e:
            return rc, out, "its --json output is not JSON (%s)\n%s" % (e, err), None
        if not isinstance(plan, dict) or "changes_pending" not in plan:
            return rc, out, "its --json output is not a plan\n" + err, None
        if bool(plan["changes_pending"]) != (rc == 2):
            return rc, out, "its exit code disagrees with changes_pending\n" + err, None
        return rc, out, err, plan

    def plan(self, out_file=None):
        rc, out, err, plan = self._plan(out_file)
        if plan is None:
            self.fail("plan", rc, out, err)
        if err.strip():
            self.module.warn(err.strip())
        return plan

    def changed_since(self, before):
        """After a failed apply, whether anything it acts on differs from what the plan was
        made from: a partial apply (or one whose --wait-online check failed) changed things."""
        rc, out, err, after = self._plan()
        if after is None:
            self.module.warn("could not plan again to tell whether the failed apply changed "
                             "anything (exit %d)" % rc)
            return False
        seen, now = before.get("fingerprints", {}), after.get("fingerprints", {})
        return any(seen.get(k) != now.get(k) for k in ("config_toml", "state", "gitlab", "service"))

    def apply(self, plan_file):
        """Applies the saved plan with --json; returns (rc, stdout, stderr, lines, summary):
        the finished steps as runnerform prints them for people, and the summary line (None
        if runnerform printed none)."""
        p = self.module.params
        args = self.base + ["apply", plan_file, "--json"]
        if p["wait_online"]:
            args += ["--wait-online", p["wait_online"]]
        if p["concurrency"] is not None:
            args += ["--concurrency", str(p["concurrency"])]
        rc, out, err = self.run(args)
        lines, summary = [], None
        for line in out.splitlines():
            try:
                event = self.module.from_json(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "finished":
                detail = " (%s)" % event["detail"] if event.get("detail") else ""
                lines.append("  [%s/%s] %s: %s%s" % (event.get("index"), event.get("total"),
                                                    event.get("runner"), event.get("step"),
                                                    detail))
            elif event.get("event") == "online":
                lines.append("  online: %s" % event.get("runner"))
            elif event.get("event") == "summary":
                summary = event
        return rc, out, err, lines, summary


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    # Not mutually_exclusive: that refuses an explicit `offline: false` beside wait_online.
    if module.params["offline"] and module.params["wait_online"]:
        module.fail_json(msg="wait_online asks GitLab whether the runners are online, which "
                             "offline rules out")
    rf = Runnerform(module)
    result = dict(changed=False, applied=False)

    if module.check_mode:
        plan = rf.plan()
        result.update(plan=plan, changed=would_change(plan))
    else:
        workdir = tempfile.mkdtemp(prefix="runnerform-", dir=module.tmpdir)
        try:
            plan_file = os.path.join(workdir, "plan.json")
            plan = rf.plan(out_file=plan_file)
            result.update(plan=plan)
            changing = would_change(plan)
            if changing or module.params["wait_online"]:
                rc, out, err, lines, summary = rf.apply(plan_file)
                # runnerform's own account of what this apply changed, also when it failed
                # midway; a summary can only be missing if runnerform died.
                if summary is not None:
                    changed = bool(summary.get("changed"))
                elif rc != 0:
                    changed = rf.changed_since(plan)
                else:
                    changed = changing
                if rc != 0:
                    rf.fail("apply", rc, out, err, plan=plan, apply_output=lines,
                            changed=changed)
                result.update(applied=True, apply_output=lines, changed=changed)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    if module._diff:
        result["diff"] = dict(prepared=prepared_diff(result["plan"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
