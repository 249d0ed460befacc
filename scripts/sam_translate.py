#!/usr/bin/env python3
"""Prints template.yaml as CloudFormation will get it: SAM's transform applied, offline, as JSON.

    .venv/bin/python scripts/sam_translate.py [--parameter Name=Value ...]

The template tests (tests/tests/api/template.rs) read what SAM generates rather than what we wrote:
the REST API's OpenAPI body with the functions' methods merged in, the API key security SAM adds
or leaves out, the gateway responses. It runs the same steps as `sam validate` (the language
extensions, then SAM's translator) without AWS credentials: the template names no managed policy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable
from samcli.yamlhelper import yaml_parse
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parent.parent
# Stands in for Fn::Sub while the language extensions run (see keep_subs_of_resources).
KEPT_SUB = "SamTranslateKeptSub"


def keep_subs_of_resources(node, parameters: set[str]):
    """Hides from the language extensions every Fn::Sub that names a resource (`${UsersApi}`,
    `${UsersApi.Stage}`): SAM CLI's local expansion substitutes what it knows and returns the rest
    as a plain string, which would drop the Sub (CloudFormation keeps it, and SAM resolves
    `${Api.Stage}` in it). A Sub of parameters and pseudo parameters only is expanded as before."""
    if isinstance(node, list):
        return [keep_subs_of_resources(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Fn::Sub"]:
        text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
        local = set() if isinstance(node["Fn::Sub"], str) else set(node["Fn::Sub"][1])
        names = set(re.findall(r"\$\{([^!}][^}]*)\}", text))
        if any(n not in parameters and n not in local and not n.startswith("AWS::") for n in names):
            return {KEPT_SUB: node["Fn::Sub"]}
    return {key: keep_subs_of_resources(value, parameters) for key, value in node.items()}


def restore_subs(node):
    if isinstance(node, list):
        return [restore_subs(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {("Fn::Sub" if key == KEPT_SUB else key): restore_subs(value) for key, value in node.items()}


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--parameter", action="append", default=[], help="Name=Value, as sam deploy --parameter-overrides")
    options = args.parse_args()
    # Only for the pseudo parameters (AWS::Region); nothing is called.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    overrides = dict(p.split("=", 1) for p in options.parameter)
    template = yaml_parse((ROOT / "template.yaml").read_text())
    template = keep_subs_of_resources(template, set(template.get("Parameters", {})))
    values = dict(IntrinsicsSymbolTable.DEFAULT_PSEUDO_PARAM_VALUES)
    values.update(overrides)
    expanded = expand_language_extensions(template, parameter_values=values, enabled=True)
    if expanded.had_language_extensions:
        template = expanded.expanded_template
    template = restore_subs(template)
    # SAM wants S3 locations for code; the local paths are not what is checked here.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://bucket/code.zip"
    translated = Translator(managed_policy_map={}, sam_parser=parser.Parser(), plugins=[]).translate(
        sam_template=template, parameter_values=overrides, get_managed_policy_map=lambda: {}
    )
    json.dump(translated, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main()
