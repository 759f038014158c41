"""Checks Schemathesis adds for Newsroom's JSON API (SCHEMATHESIS_HOOKS=newsroom_checks).

Every client error is the API's error body, with a code and a message; a 400 names the field
(or the part of the request) at fault. Schemathesis's own `not_a_server_error` holds the "no
5xx" promise; these hold the "every 4xx names what was wrong" one.
"""

import schemathesis


@schemathesis.check
def client_errors_say_what_was_wrong(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except Exception as e:  # noqa: BLE001 - any non-JSON body is the failure
        raise AssertionError(f"a {response.status_code} that is not JSON: {response.text[:200]!r}") from e
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"a {response.status_code} without an error object: {response.text[:200]}"
    assert error.get("code") and error.get("message"), f"a {response.status_code} without code and message: {error}"
    if response.status_code == 400:
        assert error.get("field"), f"a 400 that names no field: {error}"
    return None
