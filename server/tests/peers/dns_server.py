"""A tiny authoritative DNS server for tests (PyPI dnslib does the wire
format). Serves TXT records from a JSON zone file that is re-read on every
query, so a test changes DNS by rewriting the file:

    {"records": {"_portico-verification.acme.com": [["part 1", "part 2"], ["other"]]},
     "silent": ["slow.example"]}

A name in `records` answers NOERROR with its TXT records (an empty list:
NOERROR, no data); a name in `silent` never answers (a timeout); any other
name is NXDOMAIN. Binds 127.0.0.1 on a free UDP port and prints the port.
"""

import json
import socket
import sys

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord

zone_path = sys.argv[1]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
print(sock.getsockname()[1], flush=True)

while True:
    data, peer = sock.recvfrom(4096)
    try:
        request = DNSRecord.parse(data)
    except Exception:
        continue
    try:
        with open(zone_path) as f:
            zone = json.load(f)
    except (OSError, ValueError):
        zone = {}
    name = str(request.q.qname).rstrip(".").lower()
    if name in zone.get("silent", []):
        continue
    reply = request.reply()
    records = zone.get("records", {})
    if name not in records:
        reply.header.rcode = RCODE.NXDOMAIN
    elif request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
        for strings in records[name]:
            reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT([s.encode() for s in strings]), ttl=0))
    sock.sendto(reply.pack(), peer)
