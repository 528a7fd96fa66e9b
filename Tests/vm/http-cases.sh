# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# HTTP/1.1 requests for the VM's phase B (6.12 + module): each is explained on
# the host (`xds2bpf explain --dst --authority --path --method --header`) and
# sent for real in the guest; where it lands must match, weighted routes within
# the statistical tolerance of Tests/e2e/expect.py.
#   http_case NAME SNAPSHOT...
#   http_req ID DST METHOD AUTHORITY PATH [NAME:VALUE...]
# Sourced by plan-http.sh ($ROOT, $CORPUS set).

# The embedded example: vhosts by Host, a header route, a weighted route.
http_case bookinfo "$ROOT/examples/bookinfo/bookinfo.json"
http_req reviews-jason 10.96.0.12:9080 GET reviews / end-user:jason
# ~3 KB of cookies before the header that routes: past the old 1024-byte head, within X2B_HEAD_MAX
# (one line each: Tests/fuzz/http/make-seeds.py reads these lines with shlex)
COOKIE=$(printf 'c%.0s' $(seq 1500))
http_req reviews-jason-cookies 10.96.0.12:9080 GET reviews / "cookie:session=$COOKIE" "cookie:prefs=$COOKIE" end-user:jason
http_req reviews-weighted 10.96.0.12:9080 GET reviews:9080 /reviews/0
http_req ratings-by-host 10.96.0.12:9080 GET ratings /ratings/0
http_req details-fqdn 10.96.0.14:9080 GET details.default.svc.cluster.local /details/0
http_req productpage 10.96.0.11:9080 GET productpage:9080 /productpage
http_req unknown-host 10.96.0.12:9080 GET unknown.example /

# Security policies the kernel cannot run (JWT, ext_authz, per route as Envoy Gateway
# attaches them): the routes they guard are refused, the others routed; the second listener
# shares the RDS table without the filters and routes every request (fail closed, #13).
http_case guarded "$ROOT/Tests/Fixtures/guarded/eg-policies.yaml" "$ROOT/Tests/Fixtures/guarded/eg-policies-routes.yaml"
http_req jwt-route 10.0.0.1:80 GET www.example.com /api/users
http_req authz-weighted 10.0.0.1:80 GET www.example.com /beta/x
http_req authz-vhost 10.0.0.1:80 GET admin.example.com /
http_req open-route 10.0.0.1:80 GET www.example.com /home
http_req shared-without-filters 10.0.0.2:80 GET admin.example.com /

# Envoy Gateway translator output (cases the compiler accepts).
EG=$CORPUS/envoy-gateway/xds-ir
if [ -d "$EG" ]; then
	# header exact match before catch-all routes
	http_case eg-http-route-timeout "$EG"/http-route-timeout/*.yaml
	http_req user-jason "[fd00:123::5]:10080" GET www.example.com / user:jason
	http_req no-user "[fd00:123::5]:10080" GET www.example.com /
	# vhost by domain, path_separated_prefix, :authority header matcher
	http_case eg-rewrite-url-prefix "$EG"/http-route-rewrite-url-prefix/*.yaml
	http_req origin "[fd00:123::5]:10080" GET gateway.envoyproxy.io /origin/x
	http_req origin-exact "[fd00:123::5]:10080" GET gateway.envoyproxy.io:10080 /origin
	http_req not-separated "[fd00:123::5]:10080" GET gateway.envoyproxy.io /originx
	http_req other-host "[fd00:123::5]:10080" GET other.example /origin
else
	x2b_no_corpus "VM HTTP corpus cases" >&2
fi
