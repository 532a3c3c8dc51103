import Foundation

/// Random names and secrets. Every function takes its generator, so tests can seed it.
public enum Identifiers {
    static let lowerHex = Array("0123456789abcdef")
    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    /// Kubernetes' `generateName` alphabet: no vowels, no look-alike digits.
    static let podSuffix = Array("bcdfghjklmnpqrstvwxz2456789")

    /// `count` characters drawn uniformly from `alphabet`. Each 64-bit draw yields as many
    /// characters as `alphabet.count ^ perDraw` fits in it (15 hex digits, 10 base62 ones);
    /// draws at or above the largest multiple of that span are rejected, so no character is
    /// favoured.
    static func random<G: RandomNumberGenerator>(
        _ alphabet: [Character],
        _ count: Int,
        using generator: inout G
    ) -> String {
        let base = UInt64(alphabet.count)
        var perDraw = 0
        var span: UInt64 = 1
        while case (let next, false) = span.multipliedReportingOverflow(by: base) {
            span = next
            perDraw += 1
        }
        let limit = UInt64.max - UInt64.max % span
        var out = ""
        out.reserveCapacity(count)
        var left = count
        while left > 0 {
            var draw = generator.next()
            guard draw < limit else { continue }
            for _ in 0..<min(perDraw, left) {
                out.append(alphabet[Int(draw % base)])
                draw /= base
            }
            left -= min(perDraw, left)
        }
        return out
    }

    /// `instance-` and 8 lowercase hex digits.
    public static func instanceName<G: RandomNumberGenerator>(using generator: inout G) -> String {
        "instance-" + random(lowerHex, 8, using: &generator)
    }

    /// `volume-` and 8 lowercase hex digits.
    public static func volumeName<G: RandomNumberGenerator>(using generator: inout G) -> String {
        "volume-" + random(lowerHex, 8, using: &generator)
    }

    /// A pod name the way `generateName` makes one: `instance-ccff84c2-dd6nm`.
    public static func podName<G: RandomNumberGenerator>(instance: String, using generator: inout G) -> String {
        instance + "-" + random(podSuffix, 5, using: &generator)
    }

    /// The Jupyter token: 32 lowercase hex digits, as in the seed.
    public static func jupyterToken<G: RandomNumberGenerator>(using generator: inout G) -> String {
        random(lowerHex, 32, using: &generator)
    }

    /// The root password: 12 base62 characters, as in the seed.
    public static func sshPassword<G: RandomNumberGenerator>(using generator: inout G) -> String {
        random(base62, 12, using: &generator)
    }

    /// A random version 4 UUID, lowercased as the seed shows it.
    public static func uuid<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let high = generator.next(), low = generator.next()
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
        bytes += (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        var out = ""
        out.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append("-") }
            out.append(lowerHex[Int(byte >> 4)])
            out.append(lowerHex[Int(byte & 0x0F)])
        }
        return out
    }
}

/// API tokens: `lat_` + 32 random base62 characters + a 6-character base62 CRC-32 checksum,
/// so a typo or a truncated paste is rejected before any lookup.
public enum APITokenFormat {
    public static let prefix = "lat_"

    public static func generate<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let body = Identifiers.random(Identifiers.base62, 32, using: &generator)
        return prefix + body + checksum(body)
    }

    /// Whether a string has the generated shape and a matching checksum.
    public static func isWellFormed(_ token: String) -> Bool {
        guard token.hasPrefix(prefix), token.count == prefix.count + 38 else { return false }
        let rest = token.dropFirst(prefix.count)
        let body = String(rest.prefix(32)), sum = String(rest.suffix(6))
        return checksum(body) == sum
    }

    static func checksum(_ body: String) -> String {
        var value = UInt64(CRC32.checksum(Array(body.utf8)))
        var out = ""
        for _ in 0..<6 {
            out.append(Identifiers.base62[Int(value % 62)])
            value /= 62
        }
        return String(out.reversed())
    }
}

/// CRC-32 (IEEE), for token checksums.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
