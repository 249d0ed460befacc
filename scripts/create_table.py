#!/usr/bin/env python3
"""Creates the users table on the local DynamoDB server, as template.yaml declares it.

    create_table.py --endpoint http://127.0.0.1:8000 --table users-local

The key schema, attribute definitions and TTL attribute are read from the `UsersTable` resource of
template.yaml, so the local table cannot drift from the deployed one. Creating a table that already
exists is not an error (the dev loop runs this on every start).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
import yaml
from botocore.exceptions import ClientError

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class TemplateLoader(yaml.SafeLoader):
    """A YAML loader that accepts CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


TemplateLoader.add_multi_constructor("!", _tag)


def table_definition(template: Path = TEMPLATE) -> dict:
    """The table's properties from template.yaml."""
    document = yaml.load(template.read_text(), Loader=TemplateLoader)
    return document["Resources"]["UsersTable"]["Properties"]


def create(endpoint: str, table: str, region: str) -> None:
    props = table_definition()
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        client.create_table(
            TableName=table,
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
        )
        print(f"created table {table} on {endpoint}")
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
        print(f"table {table} already exists on {endpoint}")
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        sys.exit("create_table.py only talks to a local server on loopback")
    create(args.endpoint, args.table, args.region)


if __name__ == "__main__":
    main()
