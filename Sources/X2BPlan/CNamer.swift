import X2BABI
import X2BIR

/// The one namer: C identifiers and kernel-visible object names.
public enum CNamer {
    public static let prefix = "x2b_"
    /// BPF_OBJ_NAME_LEN - 1.
    public static let kernelNameLimit = 15

    /// Any character outside [A-Za-z0-9_] becomes `_`, as bpftool sanitises.
    public static func sanitize(_ s: String) -> String {
        String(
            s.unicodeScalars.map { c -> Character in
                (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_") ? Character(c) : "_"
            })
    }

    /// Text safe inside a C block comment: no `*/`, no `/*`, no control characters.
    public static func commentSafe(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c.value < 0x20 || c.value == 0x7F { out += "?" } else { out.unicodeScalars.append(c) }
        }
        return out.replacingOccurrences(of: "*/", with: "* /").replacingOccurrences(of: "/*", with: "/ *")
    }

    public static func program(_ stem: String) -> String {
        let name = prefix + stem
        precondition(name.count <= kernelNameLimit, "kernel name \(name) too long")
        return name
    }

    public static func lbConstant(_ p: IRLBPolicy) -> String {
        switch p {
        case .roundRobin: "X2B_LB_ROUND_ROBIN"
        case .random: "X2B_LB_RANDOM"
        case .leastRequest: "X2B_LB_LEAST_REQUEST"
        case .maglev: "X2B_LB_MAGLEV"
        case .ringHash: "X2B_LB_RING_HASH"
        }
    }

    /// The policy's X2B_LB_* value (x2b_cluster.lb, the entry's switch arm).
    public static func lbSlot(_ p: IRLBPolicy) -> UInt32 {
        switch p {
        case .roundRobin: ABI.lbRoundRobin
        case .random: ABI.lbRandom
        case .leastRequest: ABI.lbLeastRequest
        case .maglev: ABI.lbMaglev
        case .ringHash: ABI.lbRingHash
        }
    }
}
