/// Which HTTP and network filters can refuse traffic.
///
/// The kernel data plane routes connections and requests but runs none of a
/// listener's filters. A filter that can deny or answer a request itself
/// (authentication, authorisation, rate limits, external processing,
/// programmable filters) would be bypassed: fail closed, the lowering reports
/// it as an error (XDS209) unless `--unsupported=warn` is given. Filters known
/// to only observe, annotate or transform traffic are listed here and stay
/// "not enforced" warnings (XDS202); everything else, including filters this
/// compiler does not know, counts as possibly denying. `docs/semantics.md`
/// explains the list.
enum FilterSafety {
    /// HTTP filters (by `typed_config` message name) that never refuse a request
    /// on their own policy decision.
    static let observingHTTPTypes: Set<String> = [
        // CORS: answers preflight requests and adds response headers; the browser enforces the policy.
        "envoy.extensions.filters.http.cors.v3.Cors",
        // Fault injection: aborts and delays are injected failures for testing, not a policy.
        "envoy.extensions.filters.http.fault.v3.HTTPFault",
        // Answers health-check probes itself; other requests pass.
        "envoy.extensions.filters.http.health_check.v3.HealthCheck",
        "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
        "envoy.extensions.filters.http.compressor.v3.Compressor",
        "envoy.extensions.filters.http.decompressor.v3.Decompressor",
        "envoy.extensions.filters.http.header_to_metadata.v3.Config",
        "envoy.extensions.filters.http.set_filter_state.v3.Config",
        "envoy.extensions.filters.http.set_metadata.v3.Config",
        // Protocol translation (gRPC-Web to gRPC, gRPC over HTTP/1.1), no policy.
        "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
        "envoy.extensions.filters.http.grpc_http1_bridge.v3.Config",
        // Header rewriting, as the route table's own header mutations (neither is applied in the kernel).
        "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        // Rewrites the bodies of responses the upstream already sent; never refuses a request.
        "envoy.extensions.filters.http.custom_response.v3.CustomResponse",
        // Adds geolocation headers from the client address.
        "envoy.extensions.filters.http.geoip.v3.Geoip",
        // Throttles bytes (delays them); never refuses.
        "envoy.extensions.filters.http.bandwidth_limit.v3.BandwidthLimit",
        // Adds credentials for the upstream: bypassed, the upstream sees none (it refuses, not admits).
        "envoy.extensions.filters.http.credential_injector.v3.CredentialInjector",
        // Istio's telemetry and peer metadata filters, and its upstream ALPN override.
        "stats.PluginConfig",
        "io.istio.http.peer_metadata.Config",
        "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
        // Istio's HBONE metadata propagation (filter state from :authority and baggage).
        "io.istio.http.connect_authority.Config",
        "io.istio.http.connect_baggage.Config",
    ]

    /// Filters by name (when the typed config does not say more: Istio's stats and
    /// metadata exchange, which older releases ship as null-VM Wasm modules).
    static let observingHTTPNames: Set<String> = [
        "envoy.filters.http.cors", "envoy.cors",
        "envoy.filters.http.fault", "envoy.fault",
        "envoy.filters.http.grpc_stats",
        "istio.stats", "istio.metadata_exchange", "istio.alpn",
    ]

    /// Network filters before tcp_proxy / the HTTP connection manager that never
    /// close a connection on a policy decision.
    static let observingNetworkTypes: Set<String> = [
        "envoy.tcp.metadataexchange.config.MetadataExchange",
        "stats.PluginConfig",
        "envoy.extensions.filters.network.set_filter_state.v3.Config",
        // Istio's peer identity from the mTLS handshake, kept as filter state (no decision).
        "io.istio.network.authn.Config",
        // Passive protocol decoders: statistics and dynamic metadata (which an RBAC filter may use).
        "envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy",
        "envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy",
        "envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy",
        "envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker",
    ]

    static let observingNetworkNames: Set<String> = [
        "istio.stats", "istio.metadata_exchange",
    ]

    /// Whether an HTTP filter (not the router) can deny or answer a request.
    static func httpFilterCanDeny(type: String, name: String) -> Bool {
        if !type.isEmpty, observingHTTPTypes.contains(type) { return false }
        // A name is trusted only when the type is absent or a Wasm module (Istio's own).
        if type.isEmpty || type == "envoy.extensions.filters.http.wasm.v3.Wasm" {
            return !observingHTTPNames.contains(name)
        }
        return true
    }

    /// Whether a network filter can close or refuse a connection.
    static func networkFilterCanDeny(type: String, name: String) -> Bool {
        if !type.isEmpty, observingNetworkTypes.contains(type) { return false }
        if type.isEmpty || type == "envoy.extensions.filters.network.wasm.v3.Wasm" {
            return !observingNetworkNames.contains(name)
        }
        return true
    }
}
