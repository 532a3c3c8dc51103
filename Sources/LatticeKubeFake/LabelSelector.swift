import Foundation

/// A label selector: `a=b`, `a!=b`, `a`, `!a`, comma-separated (all must hold).
public struct LabelSelector: Sendable {
    enum Term: Sendable {
        case equals(String, String), notEquals(String, String), exists(String), absent(String)
    }
    var terms: [Term]

    /// Matches every object.
    public static let everything = LabelSelector(terms: [])

    init(terms: [Term]) { self.terms = terms }

    /// `key=value` for each pair.
    public init(_ equalities: [String: String]) {
        terms = equalities.map { .equals($0.key, $0.value) }
    }

    /// Nil when the text is not a selector this fake understands.
    public init?(parsing text: String) {
        var terms: [Term] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if let range = part.range(of: "!=") {
                terms.append(.notEquals(String(part[..<range.lowerBound]), String(part[range.upperBound...])))
            } else if let range = part.range(of: "=") {
                let value = part[range.upperBound...].drop { $0 == "=" }
                terms.append(.equals(String(part[..<range.lowerBound]), String(value)))
            } else if part.hasPrefix("!") {
                terms.append(.absent(String(part.dropFirst())))
            } else if part.contains(" ") {
                return nil
            } else {
                terms.append(.exists(part))
            }
        }
        self.terms = terms
    }

    /// Whether every term holds for `labels`.
    public func matches(_ labels: [String: String]) -> Bool {
        terms.allSatisfy { term in
            switch term {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .exists(let key): labels[key] != nil
            case .absent(let key): labels[key] == nil
            }
        }
    }
}
