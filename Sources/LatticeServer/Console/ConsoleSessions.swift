import Foundation
import LatticeDomain

/// Signed-in console sessions, keyed by a random id held in an HttpOnly, SameSite=Strict
/// cookie. Sessions live in memory: a restart signs everyone out, which is safe.
final class ConsoleSessions: @unchecked Sendable {
    struct Session: Sendable {
        var namespace: String
        var tokenID: String
        var isAdmin: Bool
        var expiresAt: Date
    }

    private let lock = NSLock()
    private var sessions: [String: Session] = [:]
    static let lifetime: TimeInterval = 12 * 3600

    func create(_ session: Session) -> String {
        let id = Self.randomToken()
        lock.withLock {
            sessions = sessions.filter { $0.value.expiresAt > Date() }
            sessions[id] = session
        }
        return id
    }

    func lookup(_ id: String, now: Date) -> Session? {
        lock.withLock {
            guard let session = sessions[id] else { return nil }
            guard session.expiresAt > now else { sessions[id] = nil; return nil }
            return session
        }
    }

    func end(_ id: String) { lock.withLock { sessions[id] = nil } }

    /// 32 random bytes as hex, for session ids and CSRF tokens.
    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }
}
