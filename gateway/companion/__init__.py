"""The companion script: keeps URLs that vendor scripts build at run time on the proxy."""
