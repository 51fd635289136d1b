"""The embedded test cloud: simulated Keystone v3 and Nova v2.1 over real
HTTP on loopback, hosts that heartbeat and fail, real IPMI BMCs (one child
process), an SMTP sink.

Map: ``state`` (hosts, services, heartbeats, failures) and ``records``;
``actions`` (evacuate, start/stop, boot, service updates, with Nova's
rules); ``identity`` + ``keystone``; ``nova`` + ``nova_services`` +
``nova_views`` + ``nova_context`` + ``microversion``; ``control`` (the
``/sim`` API); ``wsgi`` (threaded server, routing); ``events`` (timed
changes); ``seed`` (initial cloud); ``runner`` (starts it all, writes the
state directory); ``handle`` (the CloudHandle for tests, benchmarks and
the demo); ``bmc`` / ``bmc_ipmi`` (the BMC process); ``smtp``.
"""
