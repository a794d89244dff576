from gateway.rewrite.urlscan import Found, Memo

def scan(
    buf: bytes, start: int, limit: int, memo: Memo, context_ends: bytes | None, attributes: bool, /
) -> Found: ...
