import Foundation

/// A container image reference, parsed by the grammar Docker's distribution library
/// documents: `[domain[:port]/]path[:tag][@digest]`, where the path is one or more
/// lowercase components joined by `/`, each `[a-z0-9]+` separated by `.`, `_`, `__` or
/// runs of `-`; a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest is
/// `algorithm:hex`. The whole name is at most 255 characters.
public struct ImageReference: Sendable, Equatable, CustomStringConvertible {
    /// The registry host (with port), if the reference names one.
    public var domain: String?
    public var path: [String]
    public var tag: String?
    public var digest: String?

    public static func parse(_ text: String) throws -> ImageReference {
        func refuse(_ why: String) -> LatticeError {
            LatticeError.invalidField("image", "'\(text.prefix(300))' is not a valid image reference: \(why)")
        }
        guard !text.isEmpty, text.count <= 512, text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 })
        else { throw refuse("it must be printable ASCII without spaces, at most 512 characters") }
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let value = rest[rest.index(after: at)...]
            guard Self.isDigest(value) else { throw refuse("the digest must look like sha256:<64 hex digits>") }
            digest = String(value)
            rest = rest[..<at]
        }
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/") ?? rest.startIndex
        if let colon = rest[lastSlash...].lastIndex(of: ":") {
            let value = rest[rest.index(after: colon)...]
            guard Self.isTag(value) else {
                throw refuse("the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")
            }
            tag = String(value)
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var domain: String?
        if components.count > 1, let first = components.first,
            first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase)
        {
            guard Self.isDomain(first) else { throw refuse("'\(first)' is not a valid registry host") }
            domain = first
            components.removeFirst()
        }
        guard !components.isEmpty, components.allSatisfy(Self.isPathComponent) else {
            throw refuse(
                "each path component must be lowercase letters and digits joined by '.', '_', '__' or '-' "
                    + "(no empty, '.' or '..' components)"
            )
        }
        guard rest.count <= 255 else { throw refuse("the name must be at most 255 characters") }
        return ImageReference(domain: domain, path: components, tag: tag, digest: digest)
    }

    public var name: String { ([domain].compactMap { $0 } + path).joined(separator: "/") }

    public var description: String {
        name + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0 } ?? "")
    }

    /// Splits `host/project/repo:tag` into repository and tag (a port in the host is not a
    /// tag); no tag means `latest`.
    public static func split(_ reference: String) -> (repository: String, tag: String) {
        let lastSlash = reference.lastIndex(of: "/") ?? reference.startIndex
        if let colon = reference[lastSlash...].lastIndex(of: ":") {
            return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
        }
        return (reference, "latest")
    }

    static func isAlphanumeric(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }

    static func isPathComponent(_ component: String) -> Bool {
        let chars = Array(component)
        guard let first = chars.first, let last = chars.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        var index = 0
        while index < chars.count {
            if isAlphanumeric(chars[index]) {
                index += 1
                continue
            }
            // A separator: '.', '_', '__' or one or more '-', always between alphanumerics.
            var end = index
            if chars[index] == "-" {
                while end < chars.count, chars[end] == "-" { end += 1 }
            } else if chars[index] == "_" {
                end = index + 1
                if end < chars.count, chars[end] == "_" { end += 1 }
            } else if chars[index] == "." {
                end = index + 1
            } else {
                return false
            }
            guard end < chars.count, isAlphanumeric(chars[end]) else { return false }
            index = end
        }
        return true
    }

    static func isDomain(_ text: String) -> Bool {
        var host = Substring(text)
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), (1...65535).contains(number)
            else { return false }
            host = host[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty
            && labels.allSatisfy { label in
                guard let first = label.first, let last = label.last, first != "-", last != "-" else { return false }
                return label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }

    static func isTag(_ text: Substring) -> Bool {
        guard (1...128).contains(text.count), let first = text.first, first != ".", first != "-" else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }

    static func isDigest(_ text: Substring) -> Bool {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 32, parts[1].count >= 32, parts[1].count <= 128
        else { return false }
        return parts[0].allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "+._-".contains($0)) }
            && parts[1].allSatisfy { $0.isASCII && $0.isHexDigit && !$0.isUppercase }
    }
}
