"""Credentials are judged before input, everywhere (issue 21, item 11): a request with no,
bogus or wrong-role credentials and an invalid body learns nothing of the input rules."""

from __future__ import annotations

import httpx
from mes_core_factories import Plant

BAD_BODIES = [{"quantity": "lots"}, "{not json"]


def _post(pl: Plant, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=pl.url, timeout=30) as http:
        if isinstance(body, str):
            return http.post(
                path, content=body, headers={**headers, "Content-Type": "application/json"}
            )
        return http.post(path, json=body, headers=headers)


def test_credentials_are_judged_before_the_body_everywhere(pl: Plant) -> None:
    jo = pl.job_order()
    qa = {"Authorization": f"Bearer {pl.person('qa').token}"}  # quality: not shop floor
    op = {"Authorization": f"Bearer {pl.person('op').token}"}
    sup = {"Authorization": f"Bearer {pl.person('sup').token}"}
    bogus = {"Authorization": "Bearer bogus"}
    cases = [
        # The operator transactions check credentials in the endpoint (allow_in_endpoint).
        *(
            (f"/api/v1/job-orders/{jo}/operations/1/{action}", qa, op)
            for action in ("consume", "report")
        ),
        # Declared bodies elsewhere: a malformed one was refused before any dependency.
        ("/api/v1/job-orders", op, sup),
        ("/api/v1/plant-events/batch", op, None),
    ]
    for path, wrong_role, right_role in cases:
        for body in BAD_BODIES:
            where = (path, body)
            assert _post(pl, path, body, {}).status_code == 401, where
            assert _post(pl, path, body, bogus).status_code == 401, where
            refused = _post(pl, path, body, wrong_role)
            assert refused.status_code == 403, (where, refused.text)
            if right_role is not None:  # with the right role, the body is judged
                assert _post(pl, path, body, right_role).status_code == 422, where
