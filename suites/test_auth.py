"""Authentication and isolation: an account acts only on its own orders, and only once logged in.

One SUT for the module; each requirement talks to the doors directly (HTTP
with Basic auth; OUCH as bare SoupBinTCP packets) and records what the door answered
as evidence. Nothing a refused client sends may be sequenced: the sequencer's
head (or the journal's length) must not move across the refusals.
"""

from __future__ import annotations

import _support as s
import pytest
from _continuity import CONTINUITY, TITLE, module_continuity
from _doors import http_door, ouch_door

from harness.checkers import Verdict
from harness.clients import basic_auth
from harness.coverage import covered
from reference_impl.core import soupbin_codec as sb
from reference_impl.core.ouch_messages import EnterOrder


@pytest.fixture(scope="module")
def auth_sut(sut_name, seed, profile, tmp_path_factory):
    with s.open_sut(sut_name, tmp_path_factory.mktemp("auth"), seed, profile) as sut:
        yield sut


def two_accounts(sut) -> list[tuple[str, str]]:
    accounts = list(sut.accounts().items())
    if len(accounts) < 2:
        s.na(f"{sut.name} has fewer than two accounts")
    return accounts[:2]


def http_call(sut, method: str, path: str, body: dict | None = None,
              auth: tuple[str, str] | None = None, raw_auth: str | None = None) -> tuple[int, dict]:
    headers = {}
    if auth is not None:
        headers["Authorization"] = basic_auth(*auth)
    if raw_auth is not None:
        headers["Authorization"] = raw_auth
    with http_door(sut) as door:
        reply = door.request(method, path, body, headers=headers)
    return reply.status, reply.doc()


def order_body(sut, token: str) -> dict:
    symbol = next(iter(sut.instruments()), "ACME")
    tick = sut.instruments().get(symbol, 100)
    return {"token": token, "symbol": symbol, "side": "B", "qty": 7, "price": 100 * tick}


def head(sut) -> int | None:
    h = s.sequenced_head(sut)
    if h is None and sut.offers("journal"):
        h = len(sut.journal() or [])
    return h


def not_sequenced(before: int | None, after: int | None, what: str) -> list[str]:
    if before is not None and after is not None and after != before:
        return [f"{after - before} messages were sequenced while {what}"]
    return []


@pytest.mark.requirement("auth.foreign_token",
                         title="another account's token is unknown to an account")
def test_foreign_token_is_unknown(auth_sut, seed, profile):
    sut = auth_sut
    s.require_features(sut, "http")
    (owner, owner_pw), (other, other_pw) = two_accounts(sut)
    token = f"AUTH{seed % 100000:05d}X"
    status, placed = http_call(sut, "POST", "/v1/orders", order_body(sut, token), (owner, owner_pw))
    if status != 200 or not any(o.get("type") == "accepted" for o in placed.get("outputs", [])):
        s.unknown(f"{owner}'s order was not accepted (HTTP {status}: {placed}); nothing to steal")
    problems, evidence = [], {"owner": owner, "other": other, "token": token}
    status, cancel = http_call(sut, "DELETE", f"/v1/orders/{token}", auth=(other, other_pw))
    outs = cancel.get("outputs", [])
    evidence["foreign_cancel"] = {"status": status, "outputs": outs, "error": cancel.get("error")}
    refused = (status == 200 and len(outs) == 1 and outs[0].get("type") == "rejected"
               and outs[0].get("reason") == "unknown_order") or status == 404
    if not refused:
        problems.append(f"{other}'s cancel of {owner}'s token was not rejected as unknown_order "
                        f"(HTTP {status}, outputs {outs})")
    status, replace = http_call(sut, "POST", f"/v1/orders/{token}/replace",
                                {"new_token": token + "R", "qty": 3,
                                 "price": order_body(sut, token)["price"]}, (other, other_pw))
    outs = replace.get("outputs", [])
    evidence["foreign_replace"] = {"status": status, "outputs": outs}
    if not ((status == 200 and outs and all(o.get("type") == "rejected" for o in outs))
            or status == 404):
        problems.append(f"{other}'s replace of {owner}'s token was not rejected (HTTP {status})")
    status, seen = http_call(sut, "GET", f"/v1/orders/{token}", auth=(other, other_pw))
    evidence["foreign_get"] = {"status": status, "reply": seen}
    # 404, or the other account's own record of its rejected request for that token
    if status == 200 and (seen.get("state") not in ("rejected", "pending") or seen.get("qty")):
        problems.append(f"{other} can read {owner}'s order (HTTP {status}: {seen})")
    elif status not in (200, 404):
        problems.append(f"{other}'s read of the token answered HTTP {status}")
    status, mine = http_call(sut, "GET", f"/v1/orders/{token}", auth=(owner, owner_pw))
    evidence["owner_get"] = {"status": status, "state": mine.get("state"),
                             "open_qty": mine.get("open_qty")}
    if status != 200 or mine.get("state") != "open" or mine.get("open_qty") != 7:
        problems.append(f"{owner}'s order changed: HTTP {status} {mine}")
    rid = "auth.foreign_token"
    tried = sum(1 for k in ("foreign_cancel", "foreign_replace", "foreign_get") if k in evidence)
    s.judge(covered(Verdict.failed(rid, "; ".join(problems), evidence) if problems else
                    Verdict.passed(rid, f"{other} cannot cancel, replace or read {owner}'s order",
                                   evidence), {"foreign_requests": tried}, profile))


@pytest.mark.requirement("auth.bad_password",
                         title="a wrong password is refused on both doors")
def test_bad_password(auth_sut, profile):
    sut = auth_sut
    (account, password), _ = two_accounts(sut)
    before, problems, evidence = head(sut), [], {}
    if sut.offers("http"):
        status, reply = http_call(sut, "POST", "/v1/orders", order_body(sut, "AUTHBADPW1"),
                                  (account, password + "x"))
        evidence["http"] = {"status": status, "error": reply.get("error")}
        if status != 401:
            problems.append(f"HTTP with a wrong password answered {status}, not 401")
    if sut.offers("ouch"):
        with ouch_door(sut) as c:
            reply = c.login(account, password + "x")
            closed = c.packet() is None
        evidence["ouch"] = {"reply": repr(reply), "closed": closed}
        if not (isinstance(reply, sb.LoginRejected) and reply.reason == b"A"):
            problems.append(f"OUCH login with a wrong password got {reply!r}, not Login Rejected 'A'")
    problems += not_sequenced(before, head(sut), "refusing bad passwords")
    rid = "auth.bad_password"
    if not evidence:
        s.na(f"{sut.name} has neither door")
    s.judge(covered(Verdict.failed(rid, "; ".join(problems), evidence) if problems else
                    Verdict.passed(rid, "a wrong password is refused (HTTP 401, Login Rejected 'A')",
                                   evidence), {"doors": len(evidence)}, profile))


@pytest.mark.requirement("auth.no_login",
                         title="a request without credentials or login is refused")
def test_no_login(auth_sut, profile):
    sut = auth_sut
    before, problems, evidence = head(sut), [], {}
    if sut.offers("http"):
        status, _ = http_call(sut, "POST", "/v1/orders", order_body(sut, "AUTHNOLOG1"))
        garbled, _ = http_call(sut, "POST", "/v1/orders", order_body(sut, "AUTHNOLOG2"),
                               raw_auth="Basic !!notbase64!!")
        evidence["http"] = {"no_auth": status, "garbled_auth": garbled}
        if status != 401 or garbled != 401:
            problems.append(f"HTTP without valid credentials answered {status} / {garbled}, "
                            "not 401")
    if sut.offers("ouch"):
        with ouch_door(sut) as c:
            symbol = next(iter(sut.instruments()), "ACME")
            c.send_ouch(EnterOrder("AUTHNOLOG3", b"B", 5, symbol, 1_000_000))
            seen = c.until_closed()
        evidence["ouch"] = {"before_close": [repr(p) for p in seen]}
        if any(isinstance(p, (sb.SequencedData, sb.LoginAccepted)) for p in seen):
            problems.append(f"OUCH served a client that never logged in: {seen}")
    problems += not_sequenced(before, head(sut), "refusing clients without login")
    rid = "auth.no_login"
    if not evidence:
        s.na(f"{sut.name} has neither door")
    s.judge(covered(Verdict.failed(rid, "; ".join(problems), evidence) if problems else
                    Verdict.passed(rid, "no credentials: HTTP 401; an OUCH order before login: "
                                   "disconnected", evidence), {"doors": len(evidence)}, profile))


@pytest.mark.requirement("auth.wrong_session",
                         title="resuming a session that is not the current one is refused")
def test_resume_wrong_session(auth_sut, profile):
    sut = auth_sut
    s.require_features(sut, "ouch")
    (account, password), _ = two_accounts(sut)
    with ouch_door(sut) as c:
        accepted = c.login(account, password)
    if not isinstance(accepted, sb.LoginAccepted):
        s.unknown(f"a correct OUCH login was not accepted ({accepted!r}); nothing to resume")
    current = accepted.session.strip()
    wrong = ("0" * 10 if current != "0" * 10 else "1" * 10)
    with ouch_door(sut) as c:
        reply = c.login(account, password, session=wrong, sequence=1)
    evidence = {"current_session": current, "requested_session": wrong, "reply": repr(reply)}
    rid = "auth.wrong_session"
    if isinstance(reply, sb.LoginRejected) and reply.reason == b"S":
        v = Verdict.passed(rid, "resume of a session that is not current: Login Rejected 'S'", evidence)
    else:
        v = Verdict.failed(rid, f"resume of session {wrong!r} (current {current!r}) got "
                           f"{reply!r}, not Login Rejected 'S'", evidence)
    s.judge(covered(v, {"resumes": 1}, profile))


@pytest.mark.requirement(CONTINUITY, title=TITLE)
def test_sequence_continuity(auth_sut, profile):
    """Last in the module: everything it sequenced is in the sequenced input once, in order."""
    s.judge(module_continuity(auth_sut, profile))
