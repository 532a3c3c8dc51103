import Crypto
import Foundation
import LatticeDomain

/// Hashing of API token secrets: only SHA-256 digests are stored, and digests are
/// compared in constant time.
enum TokenSecrets {
    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<x.count { difference |= x[i] ^ y[i] }
        return difference == 0
    }

    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return APITokenFormat.generate(using: &generator)
    }
}
