"""The verification snippet the README gives distributors works against what the dispatcher sends:
the test runs the README's own code block."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from pantau.settings import REPO_ROOT
from pantau.subscriptions.delivery import webhook_headers
from pantau.subscriptions.signing import subscription_secret


def _readme_snippet() -> dict:
    """Execute the README's verification snippet as a distributor would paste it."""
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    snippet = next(block for block in blocks if "def verify_pantau_signature" in block)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace


verify_pantau_signature = _readme_snippet()["verify_pantau_signature"]


def signed(body: bytes, secret: str, at: int | None = None) -> str:
    subscription = uuid.uuid4()
    headers = webhook_headers(
        secret=secret,
        timestamp=at or int(time.time()),
        body=body,
        delivery=uuid.uuid4(),
        subscription=subscription,
        event_type="AlertOpened",
        event_id=str(uuid.uuid4()),
        attempt=1,
    )
    return headers["X-Pantau-Signature"]


SECRET = subscription_secret("master", uuid.UUID(int=1), 1)
BODY = b'{"event_type":"AlertOpened","payload":{"severity":"alert"}}'


def test_the_snippet_accepts_what_the_dispatcher_signs():
    verify_pantau_signature(SECRET, signed(BODY, SECRET), BODY)


def test_the_snippet_refuses_an_altered_body_a_wrong_secret_and_a_replay():
    header = signed(BODY, SECRET)
    with pytest.raises(ValueError, match="does not match"):
        verify_pantau_signature(SECRET, header, BODY.replace(b"alert", b"watch"))
    with pytest.raises(ValueError, match="does not match"):
        verify_pantau_signature("whsec_other", header, BODY)
    with pytest.raises(ValueError, match="possible replay"):
        verify_pantau_signature(SECRET, signed(BODY, SECRET, at=int(time.time()) - 3600), BODY)
