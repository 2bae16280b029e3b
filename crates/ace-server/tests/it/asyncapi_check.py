"""Checks the AsyncAPI document of /ws with tools nobody in this project wrote (asyncapi_check
in asyncapi.rs runs it):

    asyncapi_check.py DOCUMENT FRAMES

DOCUMENT is the served document. FRAMES is {"valid": {message: [frame, ...]}, "invalid":
{message: [frame, ...]}}: frames serialized by the Rust types, each of which must validate
against its message's payload schema, and broken ones, each of which must not. The document
itself must load as an AsyncAPI 3 object model (asyncapi3, pydantic). Prints one line per
finding and exits 1 when there is any.
"""

import json
import sys

import jsonschema
import referencing
import referencing.jsonschema
from asyncapi3 import AsyncAPI3

DOC_URI = "urn:ace-comms:asyncapi"


def main(document_path, frames_path):
    with open(document_path) as f:
        doc = json.load(f)
    with open(frames_path) as f:
        frames = json.load(f)
    findings = []
    try:
        AsyncAPI3.model_validate(doc)
    except Exception as err:  # pydantic.ValidationError: every problem, with its location
        findings.append(f"not an AsyncAPI 3 document: {err}")
    # The payload schemas are AsyncAPI's default format, a superset of JSON Schema draft 07;
    # their $refs point into the document's components.
    resource = referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT7
    )
    registry = referencing.Registry().with_resource(DOC_URI, resource)

    def validator(message):
        schema = {"$ref": f"{DOC_URI}#/components/messages/{message}/payload"}
        return jsonschema.Draft7Validator(schema, registry=registry)

    for message, examples in frames["valid"].items():
        for frame in examples:
            for error in validator(message).iter_errors(frame):
                findings.append(f"{message}: {json.dumps(frame)} refused: {error.message}")
    for message, examples in frames["invalid"].items():
        for frame in examples:
            if validator(message).is_valid(frame):
                findings.append(f"{message}: broken frame {json.dumps(frame)} accepted")
    for line in findings:
        print(line)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
