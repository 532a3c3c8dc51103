import Foundation
import LatticeDomain

/// An `application/x-www-form-urlencoded` body, as the console's forms post it: each field
/// once (a repeated one keeps its last value), `+` and percent escapes decoded.
enum FormBody {
    static func parse(_ data: Data) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: data, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            guard let key = parts.first else { continue }
            fields[decode(key)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    /// The fields among `keys` that were filled in, trimmed, as a JSON object of strings
    /// for the API to read (and to refuse, in its own words, what it does not accept).
    static func json(_ form: [String: String], _ keys: [String]) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        for key in keys {
            let value = (form[key] ?? "").trimmingCharacters(in: .whitespaces)
            if !value.isEmpty { fields[key] = .string(value) }
        }
        return .object(fields)
    }
}
