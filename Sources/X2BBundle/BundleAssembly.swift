import SwiftProtobuf
import X2BEmit
import X2BPlan
import X2BProtos

/// The objects clang built from one `EmittedSource`.
public struct CompiledObjects: Sendable {
    /// `x2b.bpf.o`: the plain build (HTTP listeners follow their L4 fallback).
    public var object: [UInt8]
    /// `x2b_http.bpf.o`: the defer-connect build, when the bundle routes HTTP or TLS.
    public var httpObject: [UInt8]?

    public init(object: [UInt8], httpObject: [UInt8]? = nil) {
        self.object = object
        self.httpObject = httpObject
    }
}

extension BundleFiles {
    /// The bundle of one compile: the sources clang compiled, the objects, the map
    /// images with rows, and the manifest over all of them (with `manifest.sha256`).
    /// Throws only when the manifest does not serialise.
    public static func assemble(
        plan: BundlePlan, emitted: EmittedSource, objects: CompiledObjects, provenance: ManifestBuilder.Provenance
    ) throws -> (BundleFiles, Xds2bpf_Bundle_V1_Manifest) {
        var bundle = BundleFiles()
        for (name, text) in emitted.sources { bundle.files[name] = Array(text.utf8) }
        bundle.files["x2b.bpf.o"] = objects.object
        if let http = objects.httpObject { bundle.files["x2b_http.bpf.o"] = http }
        for m in emitted.maps {
            if let img = m.image, img.entries > 0 { bundle.files["maps/\(m.name).bin"] = img.bytes }
        }
        let manifest = ManifestBuilder.manifest(plan: plan, emitted: emitted, bundle: bundle, provenance: provenance)
        bundle.setManifest(try manifest.serializedBytes())
        return (bundle, manifest)
    }
}
