"""Failsafe: a master keeps serving through a whole-etcd outage (docs/protocol.md, "Failsafe").

With `failsafe: true` in the spec, a master keeper that cannot renew its
lease asks every keeper assigned in the state and every proxy it last saw,
over their authenticated HTTP API (`POST /failsafe`), whether they cannot
reach etcd either and still see it as the master. Only when every one of
them confirms does the round count as a lease renewal, from the moment the
round started (`asker.py`). Anyone who reaches etcd declines, so a master
cut off alone fences exactly as without failsafe.

A keeper that confirmed does not become a primary until the master could
have fenced after that confirmation (`rules.promotion_hold`); a proxy that
confirmed keeps forwarding to that master until its own close deadline
counted from the confirmation (`responder.py`).

- rules.py: the requests, answers, targets and holds (pure);
- peers.py: asking the peers over HTTP(S);
- asker.py: the master keeper's rounds;
- responder.py: the `POST /failsafe` page of keepers and proxies.
"""
