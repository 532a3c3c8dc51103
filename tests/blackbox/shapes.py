"""Compares a response with a seed sample: every field of the sample must be present
in the response with the same JSON type (numbers are one type; extra fields are fine)."""


def json_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    return "object"


def assert_same_shape(sample, actual, path="$"):
    assert json_type(actual) == json_type(sample), f"{path}: sample is {json_type(sample)}, got {json_type(actual)} ({actual!r})"
    if isinstance(sample, dict):
        for key, value in sample.items():
            assert key in actual, f"{path}: field {key!r} is missing"
            assert_same_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(sample, list) and sample:
        assert actual, f"{path}: sample has elements, response has none"
        for i, item in enumerate(actual):
            assert_same_shape(sample[0], item, f"{path}[{i}]")
