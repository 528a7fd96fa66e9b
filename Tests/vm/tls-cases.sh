# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# TLS passthrough connections for the VM (6.12 + module): each is explained on
# the host (`xds2bpf explain --dst --sni --alpn`) and made for real in the
# guest against TLS servers whose certificates name their endpoint; the
# backend the handshake reached must be one the interpreter allows (or none,
# when Envoy would close the connection).
#   tls_case NAME SNAPSHOT...
#   tls_req ID DST SNI|- ALPN[,ALPN...]|- MODE
# MODE: s_client (openssl s_client, TLS 1.3), curl (a whole HTTPS request with
# curl --resolve; curl offers ALPN h2,http/1.1: give it as ALPN; IPv4 only), split (a real TLS 1.2 ClientHello
# sent in two sends, 40 ms apart, with busybox nc), plain (an HTTP/1.1 head), big (s_client
# with a 512-byte ffdhe4096 key share: with long ALPN values a ClientHello past the old
# 1024-byte head, as post-quantum clients send; X2B_HEAD_MAX is 4096).
# Sourced by plan-tls.sh ($ROOT, $CORPUS set).

tls_case passthrough "$ROOT/Tests/Fixtures/tls/passthrough.json"
tls_req exact 10.96.2.1:443 foo.example.com - s_client
tls_req upper 10.96.2.1:443 FOO.Example.COM - s_client
tls_req wildcard 10.96.2.1:443 x.example.com - s_client
tls_req longest-wildcard 10.96.2.1:443 a.b.example.com - s_client
tls_req alpn-h2 10.96.2.1:443 alpn.example.com h2 s_client
tls_req alpn-order 10.96.2.1:443 alpn.example.com x,acme,h2 s_client
tls_req alpn-none 10.96.2.1:443 alpn.example.com - s_client
tls_req no-backtrack 10.96.2.1:443 strict.example.com http/1.1 s_client
tls_req unknown-sni 10.96.2.1:443 other.test - s_client
tls_req no-sni 10.96.2.1:443 - - s_client
# ~1.8 KB ClientHellos: ALPN h2 and four 251-byte values
LONG=$(printf 'p%.0s' $(seq 250))
tls_req big-exact 10.96.2.1:443 foo.example.com "h2,a$LONG,b$LONG,c$LONG,d$LONG" big
tls_req big-alpn 10.96.2.1:443 alpn.example.com "a$LONG,b$LONG,h2,c$LONG" big
tls_req curl-exact 10.96.2.1:443 foo.example.com h2,http/1.1 curl
tls_req curl-alpn 10.96.2.1:443 alpn.example.com h2,http/1.1 curl
tls_req split-exact 10.96.2.1:443 foo.example.com - split
tls_req split-wildcard 10.96.2.1:443 x.b.example.com - split
tls_req plaintext 10.96.2.1:443 - - plain
tls_req gw-foo 10.9.9.9:8443 foo.gw.test - s_client
tls_req gw-wildcard 10.9.9.9:8443 x.bar.gw.test h2 s_client
tls_req gw-unknown 10.9.9.9:8443 bar.gw.test - s_client
tls_req gw-no-sni 10.9.9.9:8443 - - s_client
tls_req gw-plaintext 10.9.9.9:8443 - - plain

# Istio's outbound 0.0.0.0:443: a service VIP by destination IP first, external HTTPS
# services (ServiceEntry hosts) by SNI, anything else to PassthroughCluster (original
# destination: nothing listens there in the tests, so no backend is reached).
tls_case istio-outbound-443 "$ROOT/Tests/Fixtures/tls/istio-outbound-443.json"
tls_req vip 10.96.3.1:443 api.external.test - s_client
tls_req external 10.1.1.1:443 api.external.test h2,http/1.1 s_client
tls_req cdn-wildcard 10.1.1.1:443 img.cdn.external.test - s_client
tls_req cdn-split 10.1.1.1:443 img.cdn.external.test - split
tls_req external-curl 10.1.1.1:443 api.external.test h2,http/1.1 curl
tls_req passthrough 10.1.1.1:443 other.test - s_client

EG=$CORPUS/envoy-gateway/xds-ir
if [ -d "$EG/tls-route-passthrough" ]; then
	# Envoy Gateway's TLSRoute passthrough: one listener per port on "::", SNI only.
	# its bar cluster is a DNS cluster ("bar"): given an address as a node would resolve it
	tls_case eg-tls-route-passthrough --resolve bar=10.20.8.8 "$EG"/tls-route-passthrough/*.yaml
	tls_req foo "[fd00:123::5]:10080" foo.com - s_client
	tls_req foo-split "[fd00:123::5]:10080" foo.com - split
	tls_req bar "[fd00:123::5]:10081" bar.com h2 s_client
	tls_req bar-on-foo "[fd00:123::5]:10080" bar.com - s_client
	tls_req no-sni "[fd00:123::5]:10081" - - s_client
else
	x2b_no_corpus "VM TLS corpus cases" >&2
fi
