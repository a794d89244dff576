"""Request helpers that the proxy and the gateway's own pages share: who is asking (the client
address), the gateway's cookies in a request, and the log files they write."""
