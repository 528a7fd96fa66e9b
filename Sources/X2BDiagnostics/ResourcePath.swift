/// Resource paths in the form diagnostics use: `listeners["0.0.0.0_9080"].filter_chains[0]`.
public enum ResourcePath {
    public static func quoted(_ name: String) -> String {
        var out = "\""
        for ch in name.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if ch.value < 0x20 || ch.value == 0x7F {
                    out += "\\u{\(String(ch.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out + "\""
    }

    public static func listener(_ name: String) -> String { "listeners[\(quoted(name))]" }
    public static func routeConfiguration(_ name: String) -> String { "route_configurations[\(quoted(name))]" }
    public static func cluster(_ name: String) -> String { "clusters[\(quoted(name))]" }
    public static func loadAssignment(_ name: String) -> String { "load_assignments[\(quoted(name))]" }
}
