"""Checks that the Ansible module's argument spec says what its DOCUMENTATION says.

ansible-test sanity does this for collections; a standalone module has no such harness, so
the test suite runs this script (tests/cli/test_ansible.rs) with ansible-core's own Python:
option names, types, defaults, requirements and list elements must agree, every EXAMPLES
task must pass the module's argument validation, RETURN must be well-formed, and the
module's own token mask must hide what runnerform's hides.

Usage: python ansible_module_spec.py MODULE.py
"""

import importlib.util
import sys

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def load(path):
    spec = importlib.util.spec_from_file_location("runnerform_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(path):
    module = load(path)
    doc = yaml.safe_load(module.DOCUMENTATION)
    examples = yaml.safe_load(module.EXAMPLES)
    returns = yaml.safe_load(module.RETURN)
    spec = module.ARGUMENT_SPEC
    name = doc.get("module")

    check(name == "runnerform", "DOCUMENTATION names module %r" % name)
    for key in ("short_description", "description", "options", "author"):
        check(doc.get(key), "DOCUMENTATION has no %s" % key)
    options = doc.get("options") or {}
    check(
        set(options) == set(spec),
        "options documented %s, accepted %s" % (sorted(options), sorted(spec)),
    )
    for opt in sorted(set(options) & set(spec)):
        d, s = options[opt], spec[opt]
        check(d.get("description"), "%s: no description" % opt)
        for key, default in (("type", "str"), ("required", False), ("default", None),
                             ("elements", None), ("choices", None), ("aliases", None),
                             ("no_log", False)):
            check(
                d.get(key, default) == s.get(key, default),
                "%s: %s is %r in DOCUMENTATION, %r in the argument spec"
                % (opt, key, d.get(key, default), s.get(key, default)),
            )
        check(not (d.get("required") and "default" in d), "%s: required with a default" % opt)

    validator = ArgumentSpecValidator(spec)
    check(isinstance(examples, list) and examples, "EXAMPLES is not a list of tasks")
    for task in examples or []:
        params = task.get("runnerform")
        check(isinstance(params, dict), "example %r does not call the module" % task.get("name"))
        if isinstance(params, dict):
            errors = validator.validate(params).error_messages
            check(not errors, "example %r: %s" % (task.get("name"), errors))

    check(isinstance(returns, dict) and returns, "RETURN is empty")
    for key, ret in (returns or {}).items():
        for field in ("description", "returned", "type"):
            check(field in ret, "RETURN %s has no %s" % (key, field))

    # The module's own second mask, for text runnerform might one day print unmasked.
    for text, masked in (
        ("token glrt-t1_AbC.d-9 ok", "token glrt-********** ok"),
        ('{"t": "glpat-xyz", "r": "GR1348941abc"}', '{"t": "glpat-***", "r": "GR1348941***"}'),
        ("glrt-**** xglrt-abc", "glrt-**** xglrt-abc"),
    ):
        got = module.mask(text)
        check(got == masked, "mask(%r) is %r, not %r" % (text, got, masked))
    check(module.mask({"a": ["glrtr-zz"]}) == {"a": ["glrtr-**"]}, "mask does not recurse")

    if problems:
        print("\n".join(problems))
        return 1
    print("argument spec matches DOCUMENTATION: %d options, %d examples, %d return values"
          % (len(spec), len(examples), len(returns)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
