"""Creates what Schemathesis signs in as and reads: an admin (bootstrapped by the API), an agent,
and two customers of different organisations (each has signed up with its contract's code and
accepted the terms), with a ticket each, an agent's reply and a holiday. Writes the Web Fuzzing
Commons auth file that names the four identities, and a shell file of the real ids.

Usage: fixture.py BASE_URL OUT_DIR (the admin's e-mail and password in ST_ADMIN_EMAIL/ST_PASSWORD)
"""

import json
import os
import sys
import urllib.error
import urllib.request
import uuid

BASE, OUT = sys.argv[1], sys.argv[2]
PASSWORD = os.environ["ST_PASSWORD"]
TERMS = os.environ.get("HELPDESK_TERMS_VERSION", "2026-01")


def call(method, path, body=None, token=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        sys.exit(f"fixture: {method} {path} answered {status}: {text}")
    return json.loads(text) if text else None


def login(email):
    return call("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})["access_token"]


admin_email = os.environ["ST_ADMIN_EMAIL"]
admin = login(admin_email)
run = uuid.uuid4().hex[:8]
agent_email = f"agent-{run}@schemathesis.test"
agent_id = call("POST", "/v1/users", {"email": agent_email, "name": "Agente", "role": "agent", "password": PASSWORD}, admin)["id"]
call("PUT", f"/v1/consultants/{agent_id}", {}, admin)

customers, orgs, tickets = {}, {}, {}
for name in ("a", "b"):
    org = call("POST", "/v1/organizations", {"name": f"Cliente {name.upper()} {run}"}, admin)
    contract = call("POST", f"/v1/organizations/{org['id']}/contracts", {"plan": "premium", "starts_on": "2026-01-01"}, admin)
    email = f"customer-{name}-{run}@schemathesis.test"
    call("POST", "/v1/auth/register", {
        "email": email, "password": PASSWORD, "name": f"Cliente {name.upper()}",
        "signup_code": contract["signup_code"], "accepted_terms_version": TERMS,
    })
    token = login(email)
    ticket = call("POST", "/v1/tickets", {
        "subject": f"Chamado do cliente {name.upper()}", "description": "Erro 502 desde 10h",
        "category": "technical", "severity": "high",
    }, token)
    customers[name], orgs[name], tickets[name] = email, org["id"], ticket["id"]

agent = login(agent_email)
call("POST", f"/v1/tickets/{tickets['a']}/messages", {"body": "Estamos verificando.", "status": "waiting_customer"}, agent)
call("POST", "/v1/holidays", {"date": "2026-12-24", "name": "Véspera de Natal"}, admin, expect=(201, 409))


def identity(name, email):
    return {
        "name": name,
        "loginEndpointAuth": {
            "endpoint": "/v1/auth/login",
            "verb": "POST",
            "contentType": "application/json",
            "payloadRaw": json.dumps({"email": email, "password": PASSWORD}),
            "token": {"extractFrom": "body", "extractSelector": "/access_token",
                      "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Bearer {token}"},
        },
    }


auth = {"schemaVersion": "0.2.0", "auth": [
    identity("admin", admin_email), identity("agent", agent_email),
    identity("customer-a", customers["a"]), identity("customer-b", customers["b"]),
]}
with open(os.path.join(OUT, "auth.json"), "w") as f:
    json.dump(auth, f, indent=2)
with open(os.path.join(OUT, "ids.env"), "w") as f:
    f.write(f"ST_AGENT_ID={agent_id}\nST_ORG_A={orgs['a']}\nST_ORG_B={orgs['b']}\n")
    f.write(f"ST_TICKET_A={tickets['a']}\nST_TICKET_B={tickets['b']}\n")
print(f"fixture: admin, agent, customer-a (org {orgs['a']}), customer-b (org {orgs['b']}); tickets {tickets['a']}, {tickets['b']}")
