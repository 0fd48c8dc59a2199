#!/usr/bin/env python3
# What scripts/demo.sh checks: compares what the inbox shows (the host's JSON API, signed in as
# the demo's agent) with what each simulated call should end as. Exit 0 when everything is as
# expected (with --happy: when the happy path's recording is attached); prints a table with
# --report. A recording that should be attached must be attached exactly once.
#
#   DEMO_AGENT_PASSWORD=... demo_check.py HOST_URL SIM_URL HOST_LOG AGENT [--report] [--happy]
import json, os, sys, urllib.request
host, sim, log_path, agent = sys.argv[1:5]
report = "--report" in sys.argv[5:]
happy_only = "--happy" in sys.argv[5:] and any(c["scenario"] == "happy" for c in
                                               json.loads(urllib.request.urlopen(sim + "/__sim/calls").read())["calls"])
# The JSON API is for signed-in agents: sign in once, send the session cookie with every read.
login = urllib.request.Request(host + "/login", method="POST", headers={"Content-Type": "application/json"},
                               data=json.dumps({"name": agent, "password": os.environ["DEMO_AGENT_PASSWORD"]}).encode())
with urllib.request.urlopen(login, timeout=10) as r:
    cookie = r.headers["Set-Cookie"].split(";")[0]
def get(url):
    headers = {"Cookie": cookie} if url.startswith(host) else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()
calls = json.loads(get(sim + "/__sim/calls")[2])["calls"]
log = open(log_path, encoding="utf-8", errors="replace").read()
ok, rows = True, []
for c in calls:
    cid, expected = c["call_id"], c["expected_status"]
    try:
        m = json.loads(get(host + "/api/messages?external_key=wavoip%3A" + cid)[2])
    except Exception:
        m = None
    status = m["recording_status"] if m else "(no message)"
    atts = m["attachments"] if m else []
    good = status == expected or (c["scenario"] == "never-ready" and status in ("waiting", "failed"))
    if expected == "attached":
        good = good and len(atts) == 1
        if good:
            code, ctype, body = get(host + atts[0]["url"])
            good = code == 200 and ctype.startswith("audio/") and body[:4] == b"RIFF"
        if c["scenario"] == "happy":
            good = good and f"Recording READY for call {cid}" in log \
                and f"Recording attached successfully (call {cid})" in log
    if good or not happy_only or c["scenario"] == "happy":
        ok = ok and good
    rows.append((c["scenario"], cid, status, expected, len(atts), c["downloads"], "ok" if good else "NOT YET"))
if report:
    print(f"    {'scenario':13} {'call id':32}  {'inbox shows':12} {'expected':9} att dl  check")
    for r in rows:
        print(f"    {r[0]:13} {r[1]:32}  {r[2]:12} {r[3]:9} {r[4]:>3} {r[5]:>2}  {r[6]}")
sys.exit(0 if ok else 1)
