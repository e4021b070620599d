"""The guide's reference webhook verifiers (docs/examples), Python and Node.js, against
Daybreak's own signer: a genuine delivery is accepted once, then seen as a duplicate; a
changed body, a wrong secret, a stale timestamp and missing headers are refused."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from types import ModuleType

from services.notifier.channels import sign_webhook
from tests.conftest import REPO

EXAMPLES = REPO / "docs" / "examples"
SECRET = "a-receiver's-secret-of-32-characters-or-more"
NOW = 1_796_000_000
BODY = json.dumps({"notification_id": "n-1", "school_urn": "103456"}).encode()


def headers(*, timestamp: int = NOW, body: bytes = BODY, secret: str = SECRET,
            delivery: str = "d-1") -> dict[str, str]:
    return {"X-Daybreak-Timestamp": str(timestamp), "X-Daybreak-Delivery": delivery,
            "X-Daybreak-Signature": sign_webhook(secret, timestamp=timestamp, body=body)}


# (case, headers, body, the clock): what each verifier must say, in this order (one verifier)
CASES = [
    ("genuine", headers(), BODY, NOW + 3, "new"),
    ("the same delivery again (a retry)", headers(), BODY, NOW + 20, "duplicate"),
    ("another delivery", headers(delivery="d-2", timestamp=NOW + 30), BODY, NOW + 31, "new"),
    ("a changed body", headers(delivery="d-3"), BODY.replace(b"103456", b"100001"), NOW,
     "refused"),
    ("a wrong secret", headers(delivery="d-4", secret="x" * 40), BODY, NOW, "refused"),
    ("a stale timestamp (a replay)", headers(delivery="d-5", timestamp=NOW - 301), BODY, NOW,
     "refused"),
    ("a timestamp from the future", headers(delivery="d-6", timestamp=NOW + 301), BODY, NOW,
     "refused"),
    ("no signature", {k: v for k, v in headers(delivery="d-7").items()
                      if k != "X-Daybreak-Signature"}, BODY, NOW, "refused"),
    ("a malformed timestamp", headers(delivery="d-8") | {"X-Daybreak-Timestamp": "soon"}, BODY,
     NOW, "refused"),
]


def load_python_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_webhook",
                                                  EXAMPLES / "verify_webhook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_python_reference_accepts_daybreak_and_refuses_the_rest() -> None:
    reference = load_python_verifier()
    verifier = reference.WebhookVerifier(SECRET.encode())
    said = []
    for _, sent, body, now, _ in CASES:
        try:
            said.append(verifier.check(sent, body, now=now))
        except reference.Refused:
            said.append("refused")
    assert said == [expected for *_, expected in CASES]


NODE_DRIVER = """
import { Refused, WebhookVerifier } from %s;
const cases = JSON.parse(process.argv[1]);
const verifier = new WebhookVerifier(Buffer.from(%s));
const said = cases.map(([headers, body, now]) => {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  try { return verifier.check(lower, Buffer.from(body, "base64"), now); }
  catch (error) { if (error instanceof Refused) return "refused"; throw error; }
});
console.log(JSON.stringify(said));
"""


def test_the_node_reference_accepts_daybreak_and_refuses_the_rest() -> None:
    import base64

    script = NODE_DRIVER % (json.dumps(str(EXAMPLES / "verify-webhook.mjs")), json.dumps(SECRET))
    cases = [[sent, base64.b64encode(body).decode(), now] for _, sent, body, now, _ in CASES]
    node = shutil.which("node")  # make venv needs it for the portal's front end
    assert node is not None
    done = subprocess.run([node, "--input-type=module", "-e", script, json.dumps(cases)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [expected for *_, expected in CASES]
